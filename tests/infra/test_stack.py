"""Assertions on the synthesised CloudFormation template: every property the deployment relies on.

The stack is synthesised once per session (see conftest.py) with bundling skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Annotations, Match, Template

from dupcheck.core.settings import Settings
from infra import bundling
from infra.stack import DupcheckConfig

FIND_SIMILAR_HANDLER = "dupcheck.handlers.find_similar.handler"
STREAM_SYNC_HANDLER = "dupcheck.handlers.stream_sync.handler"
IMPORT_DISPATCH_HANDLER = "dupcheck.handlers.import_dispatch.handler"
IMPORT_WORKER_HANDLER = "dupcheck.handlers.import_worker.handler"
SCAN_HANDLER = "dupcheck_tools.duplicates.scan_function.handler"
PRODUCTS_HANDLER = "dupcheck.handlers.similar_products.handler"  # test_products_infra.py
PRODUCT_SYNC_HANDLER = "dupcheck.handlers.product_sync.handler"


# ---------------------------------------------------------------- helpers


def only(template: Template, resource_type: str, props: Any = None) -> tuple[str, dict]:
    found = template.find_resources(resource_type, {"Properties": props} if props is not None else None)
    assert len(found) == 1, f"expected one {resource_type} matching {props}, found {list(found)}"
    return next(iter(found.items()))


def logical_id(template: Template, resource_type: str, props: Any = None) -> str:
    return only(template, resource_type, props)[0]


def owned(template: Template, resource_type: str, construct: str) -> str:
    """The logical id of the one `resource_type` the construct `construct` (an id prefix) holds."""
    found = [key for key in template.find_resources(resource_type) if key.startswith(construct)]
    assert len(found) == 1, f"expected one {resource_type} in {construct}, found {found}"
    return found[0]


def records_table(template: Template) -> str:
    return owned(template, "AWS::DynamoDB::Table", "HashTable")


def stream_dlq(template: Template) -> str:
    return owned(template, "AWS::SQS::Queue", "StreamSync")


def thumbnail_bucket(template: Template) -> str:
    return owned(template, "AWS::S3::Bucket", "Thumbnails")


def function(template: Template, handler: str) -> tuple[str, dict]:
    return only(template, "AWS::Lambda::Function", {"Handler": handler})


def role_id(template: Template, handler: str) -> str:
    return function(template, handler)[1]["Properties"]["Role"]["Fn::GetAtt"][0]


def statements_of_role(template: Template, role: str) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    out: list[dict] = []
    for policy in policies.values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def routes(template: Template) -> dict[tuple[str, str], dict]:
    """(path, HTTP method) -> AWS::ApiGateway::Method properties."""
    resources = template.find_resources("AWS::ApiGateway::Resource")
    rest_api = logical_id(template, "AWS::ApiGateway::RestApi")

    def path(ref: Any) -> str:
        if isinstance(ref, dict) and "Fn::GetAtt" in ref:
            assert ref["Fn::GetAtt"] == [rest_api, "RootResourceId"]
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    out = {}
    for method in template.find_resources("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        out[(path(props["ResourceId"]) or "/", props["HttpMethod"])] = props
    return out


# ---------------------------------------------------------------- DynamoDB


def test_table_key_billing_pitr_stream_encryption_retain(template: Template) -> None:
    # The records; the import jobs (test_imports_infra.py); the decisions (test_decisions_infra.py); the gate's
    # claims (test_claims_infra.py).
    template.resource_count_is("AWS::DynamoDB::Table", 4)
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "KeySchema": [{"AttributeName": "entity_id", "KeyType": "HASH"}],
                "AttributeDefinitions": [
                    {"AttributeName": "entity_id", "AttributeType": "S"},
                    {"AttributeName": "kept_image", "AttributeType": "S"},
                ],
                # Records by the kept image they name (sparse, keys only): the stream sync function
                # asks it whether a picture is still used before deleting it.
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "by_kept_image",
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                        "KeySchema": [{"AttributeName": "kept_image", "KeyType": "HASH"}],
                    }
                ],
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                # AWS managed key: SSE on, no customer key.
                "SSESpecification": {"SSEEnabled": True, "KMSMasterKeyId": Match.absent()},
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


# ---------------------------------------------------------------- OpenSearch


def test_domain_version_encryption_https_tls(template: Template) -> None:
    template.has_resource_properties(
        "AWS::OpenSearchService::Domain",
        {
            "EngineVersion": "OpenSearch_2.19",
            "EncryptionAtRestOptions": {"Enabled": True},
            "NodeToNodeEncryptionOptions": {"Enabled": True},
            "DomainEndpointOptions": {
                "EnforceHTTPS": True,
                "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07",
            },
            "AdvancedSecurityOptions": Match.absent(),  # no fine-grained access control
        },
    )
    template.has_resource("AWS::OpenSearchService::Domain", {"DeletionPolicy": "Retain"})


def test_the_opensearch_api_the_adapter_is_checked_against_is_the_deployed_version(template: Template) -> None:
    """tests/data/opensearch-api/ holds OpenSearch's API specification built for one engine
    version: the one this template deploys."""
    (domain,) = template.find_resources("AWS::OpenSearchService::Domain").values()
    deployed = domain["Properties"]["EngineVersion"].removeprefix("OpenSearch_")
    spec = json.loads((Path(__file__).parents[1] / "data" / "opensearch-api" / "opensearch-openapi.json").read_text())
    built_for = spec["info"]["x-source"]["built_with"].split("--opensearch-version ")[1]
    assert built_for.startswith(deployed + "."), (built_for, deployed)


def test_domain_prod_sizing_is_zone_aware(template: Template) -> None:
    template.has_resource_properties(
        "AWS::OpenSearchService::Domain",
        {
            "DomainName": "dupcheck",
            "ClusterConfig": {
                "InstanceCount": 2,
                "InstanceType": "m6g.large.search",
                "ZoneAwarenessEnabled": True,
                "ZoneAwarenessConfig": {"AvailabilityZoneCount": 2},
                "DedicatedMasterEnabled": False,
            },
            "EBSOptions": {"EBSEnabled": True, "VolumeSize": 20, "VolumeType": "gp3"},
        },
    )


def test_domain_dev_profile_is_one_small_node(dev: tuple[Stack, Template]) -> None:
    _, template = dev
    template.has_resource_properties(
        "AWS::OpenSearchService::Domain",
        {
            "DomainName": "dupcheck-dev",
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "t3.small.search",
                "ZoneAwarenessEnabled": False,
                "ZoneAwarenessConfig": Match.absent(),
            },
            "EBSOptions": {"VolumeSize": 10, "VolumeType": "gp3"},
        },
    )
    template.has_resource("AWS::OpenSearchService::Domain", {"DeletionPolicy": "Delete"})
    template.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})


def test_domain_access_policy_names_exactly_the_function_roles_that_search(template: Template) -> None:
    _, domain = only(template, "AWS::OpenSearchService::Domain")
    statements = domain["Properties"]["AccessPolicies"]["Statement"]
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "es:ESHttp*"
    principals = statement["Principal"]["AWS"]
    assert sorted(principals, key=str) == sorted(
        [
            {"Fn::GetAtt": [role_id(template, handler), "Arn"]}
            # The import worker too: its duplicate gate looks each row up in the index.
            for handler in (
                FIND_SIMILAR_HANDLER,
                STREAM_SYNC_HANDLER,
                PRODUCTS_HANDLER,
                PRODUCT_SYNC_HANDLER,
                IMPORT_WORKER_HANDLER,
            )
        ],
        key=str,
    )
    assert "*" not in str(principals)
    # The resource is this domain's paths, built from its name (not a wildcard domain).
    assert statement["Resource"]["Fn::Join"][1][-1] == ":domain/dupcheck/*"


def test_domain_publishes_slow_and_application_logs(template: Template) -> None:
    _, domain = only(template, "AWS::OpenSearchService::Domain")
    options = domain["Properties"]["LogPublishingOptions"]
    assert set(options) == {"SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS", "ES_APPLICATION_LOGS"}
    assert all(option["Enabled"] for option in options.values())
    # Plain resource policy, no custom-resource Lambda for it.
    _, policy = only(template, "AWS::Logs::ResourcePolicy")
    document = str(policy["Properties"]["PolicyDocument"])
    assert "es.amazonaws.com" in document and "logs:PutLogEvents" in document


def test_only_the_seven_dupcheck_functions_exist(template: Template) -> None:
    # No custom-resource Lambdas (access policy, log policy and the bucket's EventBridge
    # notifications are plain CloudFormation).
    template.resource_count_is("AWS::Lambda::Function", 7)
    handlers = {f["Properties"]["Handler"] for f in template.find_resources("AWS::Lambda::Function").values()}
    assert handlers == {
        FIND_SIMILAR_HANDLER,
        STREAM_SYNC_HANDLER,
        "dupcheck.handlers.import_dispatch.handler",
        "dupcheck.handlers.import_worker.handler",
        SCAN_HANDLER,  # test_scans_infra.py
        PRODUCTS_HANDLER,  # test_products_infra.py
        PRODUCT_SYNC_HANDLER,
    }


# ---------------------------------------------------------------- Lambda functions


@pytest.mark.parametrize(
    ("handler", "memory", "timeout"),
    [(FIND_SIMILAR_HANDLER, 1024, 29), (STREAM_SYNC_HANDLER, 512, 60)],
)
def test_function_runtime_handler_memory_timeout(template: Template, handler: str, memory: int, timeout: int) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": handler,
            "Runtime": "python3.12",
            "Architectures": ["arm64"],  # Graviton: every dependency has aarch64 wheels
            "MemorySize": memory,
            "Timeout": timeout,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": Match.any_value()},
        },
    )


@pytest.mark.parametrize("handler", [FIND_SIMILAR_HANDLER, STREAM_SYNC_HANDLER])
def test_function_environment_uses_settings_names(template: Template, handler: str) -> None:
    table = records_table(template)
    domain = logical_id(template, "AWS::OpenSearchService::Domain")
    bucket = thumbnail_bucket(template)
    claims = owned(template, "AWS::DynamoDB::Table", "GateClaims")
    env = function(template, handler)[1]["Properties"]["Environment"]["Variables"]
    if handler == FIND_SIMILAR_HANDLER:  # the API records import jobs, starts scans, keeps decisions (their tests)
        env = {k: v for k, v in env.items() if "IMPORT" not in k and "SCANS" not in k and "DECISIONS" not in k}
    else:  # stream_sync claims and deletes kept images, in the imports bucket
        imports_bucket = owned(template, "AWS::S3::Bucket", "ImportsBucket")
        assert env.pop(Settings.env_name("imports_bucket")) == {"Ref": imports_bucket}
    assert env == {
        Settings.env_name("store"): "dynamodb",
        Settings.env_name("index"): "opensearch",
        Settings.env_name("table_name"): {"Ref": table},
        Settings.env_name("claims_table"): {"Ref": claims},
        Settings.env_name("thumbnail_bucket"): {"Ref": bucket},
        Settings.env_name("opensearch_endpoint"): {"Fn::GetAtt": [domain, "DomainEndpoint"]},
        Settings.env_name("opensearch_index"): "dupcheck-hashes",
        Settings.env_name("log_level"): "INFO",
        Settings.env_name("marks"): "photo",
        "POWERTOOLS_SERVICE_NAME": "dupcheck",
        "POWERTOOLS_METRICS_NAMESPACE": "dupcheck",
        "LOG_LEVEL": "INFO",
    }
    # Every DUPCHECK_* name is one the code reads: Settings.from_env accepts them.
    deployed = {k: v if isinstance(v, str) else "resolved-at-deploy" for k, v in env.items()}
    settings = Settings.from_env({k: v for k, v in deployed.items() if k.startswith("DUPCHECK_")})
    assert (settings.store, settings.index) == ("dynamodb", "opensearch")


def test_a_deployment_says_what_a_mark_on_the_product_means() -> None:
    """`-c dupcheck:marks=product` reaches every function as DUPCHECK_MARKS; another value is refused."""
    from conftest import synth

    _, template = synth(**{"dupcheck:marks": "product"})
    functions = template.find_resources("AWS::Lambda::Function").values()
    marks = {f["Properties"]["Environment"]["Variables"].get(Settings.env_name("marks")) for f in functions
             if "Environment" in f["Properties"]}  # fmt: skip
    assert marks == {"product"}
    with pytest.raises(ValueError, match="marks must be one of photo, product"):
        synth(**{"dupcheck:marks": "print"})


def test_the_functions_share_one_code_asset_but_the_products_ones(template: Template) -> None:
    """The product model and onnxruntime ship only with the two functions that run them."""
    keys = {fn["Properties"]["Handler"]: fn["Properties"]["Code"]["S3Key"]
            for fn in template.find_resources("AWS::Lambda::Function").values()}  # fmt: skip
    products = {keys.pop(PRODUCTS_HANDLER), keys.pop(PRODUCT_SYNC_HANDLER)}
    assert len(set(keys.values())) == 1 and len(products) == 1 and products.isdisjoint(keys.values())


def test_find_similar_reads_and_writes_the_table(template: Template) -> None:
    table = records_table(template)
    table_arn = {"Fn::GetAtt": [table, "Arn"]}
    granted: set[str] = set()
    for statement in statements_of_role(template, role_id(template, FIND_SIMILAR_HANDLER)):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if table_arn in resources:
            granted.update(actions(statement))
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= granted


def test_thumbnail_bucket_private_encrypted_tls_only_retained(template: Template) -> None:
    bucket_id = thumbnail_bucket(template)
    bucket = template.find_resources("AWS::S3::Bucket")[bucket_id]
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert "VersioningConfiguration" not in props  # derived data: reindex makes it again
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    (policy,) = [p["Properties"] for p in template.find_resources("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": bucket_id}]  # fmt: skip
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_thumbnails_are_read_and_written_by_find_similar_and_the_import_worker_only(template: Template) -> None:
    bucket = thumbnail_bucket(template)
    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/thumbnails/*"]]}
    expected = {
        FIND_SIMILAR_HANDLER: ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],  # registers and removes
        IMPORT_WORKER_HANDLER: ["s3:GetObject", "s3:PutObject"],  # writes its rows' thumbnails, never deletes
    }
    for handler, object_actions in expected.items():
        statements = statements_of_role(template, role_id(template, handler))
        on_objects = [s for s in statements if s["Resource"] == objects]
        assert [sorted(actions(s)) for s in on_objects] == [object_actions], handler
        # Listing (so that a missing thumbnail is a 404, not a 403), under the prefix only.
        listing = [s for s in statements if s["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}]
        assert [actions(s) for s in listing] == [["s3:ListBucket"]], handler
        assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["thumbnails/*"]}}
    for handler in (STREAM_SYNC_HANDLER, IMPORT_DISPATCH_HANDLER):
        assert str(bucket) not in str(statements_of_role(template, role_id(template, handler))), handler


@pytest.mark.parametrize("handler", [FIND_SIMILAR_HANDLER, STREAM_SYNC_HANDLER])
def test_both_functions_may_call_the_domain_over_http(template: Template, handler: str) -> None:
    domain = logical_id(template, "AWS::OpenSearchService::Domain")
    statements = [s for s in statements_of_role(template, role_id(template, handler)) if "es:ESHttp*" in actions(s)]
    assert len(statements) == 1
    assert statements[0]["Resource"] == [
        {"Fn::GetAtt": [domain, "Arn"]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [domain, "Arn"]}, "/*"]]},
    ]


def test_stream_sync_reads_the_stream_and_writes_the_dlq(template: Template) -> None:
    table = records_table(template)
    dlq = stream_dlq(template)
    statements = statements_of_role(template, role_id(template, STREAM_SYNC_HANDLER))
    by_resource = {str(s["Resource"]): set(actions(s)) for s in statements}
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"} <= by_resource[
        str({"Fn::GetAtt": [table, "StreamArn"]})
    ]
    assert "sqs:SendMessage" in by_resource[str({"Fn::GetAtt": [dlq, "Arn"]})]
    # stream_sync never writes the records table (the claims table it does: test_claims_infra.py).
    records = str({"Fn::GetAtt": [table, "Arn"]})
    assert not any("dynamodb:PutItem" in actions(s) and records in str(s["Resource"]) for s in statements)


# ---------------------------------------------------------------- stream -> stream_sync


def test_event_source_mapping(template: Template) -> None:
    table = records_table(template)
    dlq = stream_dlq(template)
    stream_fn = function(template, STREAM_SYNC_HANDLER)[0]
    # and the imports' two queues, the scans', the product sync's stream (test_products_infra.py)
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 5)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [table, "StreamArn"]},
            "FunctionName": {"Ref": stream_fn},
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 100,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 3,
            "MaximumRecordAgeInSeconds": 86400,
            "ParallelizationFactor": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq, "Arn"]}}},
        },
    )


def test_dlq_encrypted_ssl_only_14_days(template: Template) -> None:
    dlq = stream_dlq(template)
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True,
                                                         "MessageRetentionPeriod": 14 * 86400})  # fmt: skip
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": dlq}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


# ---------------------------------------------------------------- API Gateway

EXPECTED_ROUTES = {  # (path, method) -> API key required
    ("/", "ANY"): False,  # the web app's page: it shows nothing until its calls bring the key
    ("/web/{proxy+}", "ANY"): False,  # the web app's scripts and styles
    ("/{proxy+}", "ANY"): True,  # every API route, any method: the function routes (405, HEAD, slashes)
    ("/health", "ANY"): False,
    ("/openapi.json", "ANY"): False,
    ("/docs", "ANY"): False,
}
# Paths another function answers, with the key (test_products_infra.py).
ROUTED_ELSEWHERE = {("/similar_products", "ANY")}


def test_every_path_and_method_proxies_to_find_similar_with_the_key_where_needed(template: Template) -> None:
    found = routes(template)
    assert set(found) == set(EXPECTED_ROUTES) | ROUTED_ELSEWHERE
    alias = logical_id(template, "AWS::Lambda::Alias")  # find_similar's published version (SnapStart)
    for route, key_required in EXPECTED_ROUTES.items():
        props = found[route]
        assert props["ApiKeyRequired"] is key_required, route
        assert props["Integration"]["Type"] == "AWS_PROXY", route
        assert {"Ref": alias} in props["Integration"]["Uri"]["Fn::Join"][1], route
    # The old prototype's clients call /find_similar/ (a trailing slash): {proxy+} carries it.
    assert template.find_resources("AWS::ApiGateway::Resource", {"Properties": {"PathPart": "{proxy+}"}})


def test_the_open_routes_are_throttled_by_the_stage(template: Template) -> None:
    (stage,) = template.find_resources("AWS::ApiGateway::Stage").values()
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in stage["Properties"]["MethodSettings"]}
    for path, limits in [("/", (10, 20)), ("/~1health", (10, 20)), ("/~1openapi.json", (10, 20)),
                         ("/~1docs", (10, 20)), ("/~1web~1{proxy+}", (20, 60))]:  # fmt: skip
        throttle = settings[(path, "*")]
        assert (throttle["ThrottlingRateLimit"], throttle["ThrottlingBurstLimit"]) == limits, path


def test_gateway_refusals_use_the_api_error_body(template: Template) -> None:
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in template.find_resources("AWS::ApiGateway::GatewayResponse").values()}  # fmt: skip
    expected = {"MISSING_AUTHENTICATION_TOKEN": ("403", "forbidden"), "INVALID_API_KEY": ("403", "forbidden"),
                "THROTTLED": ("429", "throttled"), "QUOTA_EXCEEDED": ("429", "quota_exceeded"),
                "REQUEST_TOO_LARGE": ("413", "image_too_large"), "INTEGRATION_TIMEOUT": ("504", "timeout"),
                "DEFAULT_4XX": (None, "invalid_request"), "DEFAULT_5XX": (None, "gateway_error")}  # fmt: skip
    assert set(responses) == set(expected)
    for response_type, (status, code) in expected.items():
        props = responses[response_type]
        assert props.get("StatusCode") == status, response_type
        body = props["ResponseTemplates"]["application/json"].replace("$context.error.messageString", '"m"')
        assert json.loads(body) == {"error": {"code": code, "message": "m"}}, response_type


def test_rest_api_binary_media_types_and_key_source(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "Name": "Dupcheck-api",
            "BinaryMediaTypes": ["image/*", "multipart/form-data", "application/octet-stream", "application/gzip"],
            "ApiKeySourceType": "HEADER",
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
        },
    )


def test_stage_v1_tracing_and_access_logs(template: Template) -> None:
    _, stage = only(template, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    # The log group's ARN without the `:*` its Arn attribute ends in (logGroupDestinationArnWithoutWildcard).
    arn = props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    assert arn[-2] == ":log-group:" and "Ref" in arn[-1]
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    assert template.to_json()["Resources"][arn[-1]["Ref"]]["Type"] == "AWS::Logs::LogGroup"
    for field in ("$context.requestId", "$context.status", "$context.httpMethod", "$context.resourcePath"):
        assert field in props["AccessLogSetting"]["Format"]
    assert props["MethodSettings"][0] == {
        "DataTraceEnabled": False,
        "HttpMethod": "*",
        "LoggingLevel": "ERROR",
        "MetricsEnabled": True,
        "ResourcePath": "/*",
    }


def test_api_key_and_usage_plan_throttle_and_quota(template: Template) -> None:
    stage = logical_id(template, "AWS::ApiGateway::Stage")
    template.resource_count_is("AWS::ApiGateway::ApiKey", 1)
    plan = logical_id(
        template,
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": 50, "BurstLimit": 100},
            "Quota": {"Limit": 200000, "Period": "DAY"},
            "ApiStages": [Match.object_like({"Stage": {"Ref": stage}})],
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlanKey",
        {
            "KeyType": "API_KEY",
            "UsagePlanId": {"Ref": plan},
            "KeyId": {"Ref": logical_id(template, "AWS::ApiGateway::ApiKey")},
        },
    )


def test_api_key_version_replaces_the_key(template: Template, dev: tuple[Stack, Template]) -> None:
    (v1,) = template.find_resources("AWS::ApiGateway::ApiKey")
    (v2,) = dev[1].find_resources("AWS::ApiGateway::ApiKey")
    assert v1 != v2  # a new logical id: CloudFormation creates the new key and deletes the old one
    dev[1].has_resource_properties("AWS::ApiGateway::UsagePlanKey", {"KeyId": {"Ref": v2}})


def test_usage_plan_reads_context_strings(dev: tuple[Stack, Template]) -> None:
    _, template = dev
    template.has_resource_properties("AWS::ApiGateway::UsagePlan", {"Throttle": {"RateLimit": 5, "BurstLimit": 100}})


# ---------------------------------------------------------------- alarms and outputs


def test_alarms_dlq_function_errors_api_5xx_cluster_red(template: Template) -> None:
    topic = logical_id(template, "AWS::SNS::Topic")
    dlq = stream_dlq(template)
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    by_metric: dict[str, list[dict]] = {}
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": topic}]
        by_metric.setdefault(props.get("MetricName", "(math)"), []).append(props)
    (dlq_alarm,) = [a for a in by_metric["ApproximateNumberOfMessagesVisible"]  # (the imports': their test)
                    if a["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq, "QueueName"]}]  # fmt: skip
    assert dlq_alarm["Threshold"] == 1
    assert dlq_alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert dlq_alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    errored = {a["Dimensions"][0]["Value"]["Ref"] for a in by_metric["Errors"]}
    assert errored == {
        function(template, handler)[0]
        for handler in (
            FIND_SIMILAR_HANDLER,
            STREAM_SYNC_HANDLER,
            "dupcheck.handlers.import_dispatch.handler",
            "dupcheck.handlers.import_worker.handler",
            SCAN_HANDLER,
            PRODUCTS_HANDLER,
            PRODUCT_SYNC_HANDLER,
        )
    }
    (api_alarm,) = by_metric["(math)"]  # test_api_5xx_alarm_counts_only_the_services_own below
    assert "5XXError" not in by_metric  # the raw 5XX rate counts a caller's bad image host too
    assert len(by_metric["ClusterStatus.red"]) == 1


def _api_5xx_alarm(template: Template) -> dict[str, Any]:
    (alarm,) = [a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()
                if "Metrics" in a["Properties"]]  # fmt: skip
    return alarm


def test_api_5xx_alarm_counts_only_the_services_own(template: Template) -> None:
    """API Gateway's 5XX less the function's `UpstreamFaults` (an image or catalog host's 502/504),
    over the requests: the metrics are the right ones, and the formula, evaluated as CloudWatch
    does, stays quiet for a caller's bad image host and fires for the service's own faults."""
    alarm = _api_5xx_alarm(template)
    assert alarm["Threshold"] == 0.05 and alarm["EvaluationPeriods"] == 3
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    stat = {name: metrics[name]["MetricStat"] for name in ("errors", "upstream", "requests")}
    assert stat["errors"]["Metric"]["MetricName"] == "5XXError" and stat["errors"]["Stat"] == "Sum"
    assert stat["requests"]["Metric"]["MetricName"] == "Count" and stat["requests"]["Stat"] == "Sum"
    for name in ("errors", "requests"):
        assert stat[name]["Metric"]["Namespace"] == "AWS/ApiGateway"
        assert stat[name]["Metric"]["Dimensions"] == [{"Name": "ApiName", "Value": "Dupcheck-api"}]
    # The function's own metric, where the function's Powertools settings put it.
    env = function(template, FIND_SIMILAR_HANDLER)[1]["Properties"]["Environment"]["Variables"]
    upstream = stat["upstream"]
    assert upstream["Metric"]["MetricName"] == "UpstreamFaults" and upstream["Stat"] == "Sum"
    assert upstream["Metric"]["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    assert upstream["Metric"]["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    assert {m["Period"] for m in stat.values()} == {300}

    expression = metrics[next(k for k, m in metrics.items() if "Expression" in m)]["Expression"]

    def rate(errors: float | None, upstream: float | None, requests: float | None) -> float:
        """CloudWatch metric math on one period; None is a period without a data point."""
        names = {"errors": errors, "upstream": upstream, "requests": requests,
                 "IF": lambda c, a, b: a if c else b, "FILL": lambda v, d: d if v is None else v}  # fmt: skip
        return float(eval(expression, {"__builtins__": {}}, names))  # noqa: S307 - the template's own formula

    threshold = alarm["Threshold"]
    assert rate(errors=40, upstream=40, requests=100) < threshold  # every 5XX a caller's bad image host
    assert rate(errors=40, upstream=38, requests=100) < threshold
    assert rate(errors=40, upstream=None, requests=100) >= threshold  # OpenSearch down: 503s of its own
    assert rate(errors=10, upstream=3, requests=100) >= threshold
    assert rate(errors=None, upstream=None, requests=100) == 0  # no 5XX at all
    assert rate(errors=None, upstream=None, requests=None) == 0  # no traffic


def test_alarm_topic_encrypted_ssl_only(template: Template, dev: tuple[Stack, Template]) -> None:
    _, topic = only(template, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"]["Fn::Join"][1][-1] == ":alias/aws/sns"
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({"Effect": "Deny"})])}},
    )
    template.resource_count_is("AWS::SNS::Subscription", 0)
    dev[1].has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_outputs(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    for name in (
        "ApiUrl",
        "ApiKeyId",
        "TableName",
        "ThumbnailBucketName",
        "SearchDomainEndpoint",
        "DeadLetterQueueUrl",
        "AlarmTopicArn",
    ):
        assert name in outputs, name
    assert outputs["TableName"]["Value"] == {"Ref": records_table(template)}
    assert outputs["ThumbnailBucketName"]["Value"] == {"Ref": thumbnail_bucket(template)}
    assert outputs["ApiKeyId"]["Value"] == {"Ref": logical_id(template, "AWS::ApiGateway::ApiKey")}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": stream_dlq(template)}
    assert "v1" in str(outputs["ApiUrl"]["Value"])


def deploy_md_shell_lines() -> list[str]:
    """The lines of docs/deploy.md's bash blocks in document order, continuations joined and
    comments dropped: what an operator types, top to bottom, in one shell."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^ *```bash\n(.*?)^ *```", text, re.M | re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [re.sub(r"(^|\s)#(\s.*)?$", "", line).strip() for line in lines]


def test_deploy_md_sets_every_variable_before_use_and_reads_outputs_the_stack_has(template: Template) -> None:
    """The first deploy works from a clean shell: each `$NAME` its commands use is set by a command
    before it (on an earlier line: `export A=1 B=$A` expands $A before A is set), each function
    called is defined before, and each `output NAME` reads an output the stack has."""
    outputs = template.to_json()["Outputs"]
    assigned: set[str] = set()
    functions: set[str] = set()
    read: list[str] = []
    lines = deploy_md_shell_lines()
    for line in lines:
        used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", line))
        assert used <= assigned, f"docs/deploy.md uses {sorted(used - assigned)} before setting it: {line}"
        called = set(re.findall(r"\$\((\w+) ", line)) - {"aws"}
        assert called <= functions, f"docs/deploy.md calls {sorted(called - functions)} before defining it: {line}"
        read += re.findall(r"\$\(output (\w+)\)", line)
        assigned |= set(re.findall(r"(?<![\w.-])([A-Za-z_][A-Za-z0-9_]*)=", line))
        if defined := re.match(r"(\w+)\(\) *\{", line):
            functions.add(defined.group(1))
    assert {"AWS_REGION", "STACK", "API_URL", "API_KEY", "THUMBNAIL_BUCKET"} <= assigned  # the walk-through was read
    assert read and set(read) <= set(outputs), (
        f"docs/deploy.md reads outputs the stack lacks: {set(read) - set(outputs)}"
    )


# ---------------------------------------------------------------- cdk-nag


@pytest.mark.parametrize("profile", ["prod", "dev"])
def test_no_unsuppressed_cdk_nag_findings(
    profile: str, prod: tuple[Stack, Template], dev: tuple[Stack, Template]
) -> None:
    stack = (prod if profile == "prod" else dev)[0]
    annotations = Annotations.from_stack(stack)
    pattern = Match.string_like_regexp("AwsSolutions-.*")
    assert annotations.find_error("*", pattern) == []
    assert annotations.find_warning("*", pattern) == []


def test_every_suppression_has_a_reason(template: Template) -> None:
    seen = 0
    for resource in template.to_json()["Resources"].values():
        for suppression in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            seen += 1
            assert suppression["id"].startswith("AwsSolutions-")
            assert len(suppression["reason"]) >= 40, suppression
    assert seen > 0


# ---------------------------------------------------------------- configuration and bundling (no synth)


class FakeNode:
    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def try_get_context(self, key: str) -> Any:
        return self._context.get(key)


def test_config_defaults_and_string_overrides() -> None:
    prod = DupcheckConfig.from_context(FakeNode({}))
    assert (prod.search_instance_type, prod.search_node_count, prod.search_volume_gib) == (
        "m6g.large.search",
        2,
        20,
    )
    dev = DupcheckConfig.from_context(FakeNode({"dupcheck:profile": "dev", "dupcheck:searchNodeCount": "3"}))
    assert (dev.search_instance_type, dev.search_node_count, dev.search_volume_gib) == (
        "t3.small.search",
        3,
        10,
    )
    with pytest.raises(ValueError, match="profile"):
        DupcheckConfig.from_context(FakeNode({"dupcheck:profile": "staging"}))
    with pytest.raises(ValueError, match="searchNodeCount"):
        DupcheckConfig.from_context(FakeNode({"dupcheck:searchNodeCount": "two"}))


def test_local_bundler_installs_the_locked_requirements_for_the_lambda_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    compiled: list[tuple[Path, str, str]] = []

    def fake_run(cmd: list[str], check: bool) -> subprocess.CompletedProcess:
        calls.append(cmd)
        out = Path(cmd[cmd.index("--target") + 1])
        for name in ("numpy/fft/tests", "numpy/_core/include"):
            (out / name).mkdir(parents=True, exist_ok=True)
        (out / "numpy/_core/include/npy.h").write_text("/* build only */")
        (out / "numpy-2.0.dist-info").mkdir()
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_run)
    monkeypatch.setattr(bundling.shutil, "which", lambda _name: None)  # no strip here
    monkeypatch.setattr(bundling, "lambda_python", lambda: "/opt/python3.12")
    monkeypatch.setattr(
        bundling, "compile_bytecode", lambda root, keep_sources, python: compiled.append((root, keep_sources, python))
    )
    assert bundling.LocalBundler().try_bundle(str(tmp_path), None) is True
    (cmd,) = calls
    assert cmd[cmd.index("pip") - 1 : cmd.index("pip") + 2] == ["uv", "pip", "install"]
    for flag, value in [
        ("--python-platform", "aarch64-manylinux_2_28"),
        ("--python-version", "3.12"),
        ("--only-binary", ":all:"),
        ("--requirement", str(bundling.REQUIREMENTS)),
        ("--target", str(tmp_path)),
    ]:
        assert cmd[cmd.index(flag) + 1] == value
    assert "--no-deps" in cmd  # requirements.txt is the lock's complete, pinned closure
    assert (tmp_path / "dupcheck" / "handlers" / "__init__.py").is_file()
    assert (tmp_path / "dupcheck" / "web" / "index.html").is_file()  # the web app ships with the API
    assert not (tmp_path / "dupcheck" / "__main__.py").exists()  # the command line does not ship
    assert not (tmp_path / "dupcheck_tools").exists()
    assert not (tmp_path / "numpy" / "fft" / "tests").exists() and not (tmp_path / "numpy/_core/include/npy.h").exists()
    assert (tmp_path / "numpy").exists() and (tmp_path / "numpy-2.0.dist-info").exists()
    assert compiled == [(tmp_path, "dupcheck", "/opt/python3.12")]  # by the runtime's Python


def test_local_bundler_fails_loudly_when_the_install_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundling, "lambda_python", lambda: "/opt/python3.12")
    monkeypatch.setattr(bundling.subprocess, "run", lambda cmd, check: subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(bundling.BundlingError):
        bundling.LocalBundler().try_bundle(str(tmp_path), None)


def test_local_bundler_builds_nothing_without_the_runtimes_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No CPython 3.12: a clear error before any download, never a bundle that compiles at each cold start."""
    installs: list[list[str]] = []
    monkeypatch.delenv("LAMBDA_BUNDLE_PYTHON", raising=False)
    monkeypatch.setattr(bundling, "python_candidates", lambda: iter([sys.executable]))
    monkeypatch.setattr(bundling, "PYTHON_VERSION", "3.99")
    real_run = subprocess.run

    def run(cmd: list[str], **options: Any) -> Any:
        if "install" in cmd:
            installs.append(cmd)
        return real_run(cmd, **options)

    monkeypatch.setattr(bundling.subprocess, "run", run)
    with pytest.raises(bundling.BundlingError, match=r"no CPython 3\.99 .*uv python install 3\.99"):
        bundling.LocalBundler().try_bundle(str(tmp_path), None)
    assert installs == []


def test_lambda_python_takes_only_the_runtimes_version(monkeypatch: pytest.MonkeyPatch) -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    monkeypatch.delenv("LAMBDA_BUNDLE_PYTHON", raising=False)
    monkeypatch.setattr(bundling, "PYTHON_VERSION", running)
    assert bundling.lambda_python(["/nonexistent/python", sys.executable]) == sys.executable
    monkeypatch.setattr(bundling, "PYTHON_VERSION", "3.99")
    with pytest.raises(bundling.BundlingError, match="no CPython 3.99"):
        bundling.lambda_python(["/nonexistent/python", sys.executable])
    monkeypatch.setenv("LAMBDA_BUNDLE_PYTHON", sys.executable)  # named, but the wrong version
    with pytest.raises(bundling.BundlingError, match=f"is CPython {running}, not CPython 3.99"):
        bundling.lambda_python()


# ---------------------------------------------------------------- SnapStart


def test_find_similar_runs_with_snapstart_behind_an_alias(template: Template) -> None:
    """API Gateway invokes the alias of the published version (SnapStart covers versions only);
    an old version goes when a new one is published (each cached snapshot is billed)."""
    find_id, find = function(template, FIND_SIMILAR_HANDLER)
    assert find["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    _, stream = function(template, STREAM_SYNC_HANDLER)
    assert "SnapStart" not in stream["Properties"]
    versions = template.find_resources("AWS::Lambda::Version")
    (version_id,) = [k for k, v in versions.items() if v["Properties"]["FunctionName"] == {"Ref": find_id}]
    assert versions[version_id]["DeletionPolicy"] == "Delete"
    alias_id, alias = only(template, "AWS::Lambda::Alias")
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    elsewhere = {path for path, _ in ROUTED_ELSEWHERE}
    methods = [m for (path, _), m in routes(template).items() if path not in elsewhere]
    uris = [json.dumps(m["Integration"]["Uri"]) for m in methods]
    assert uris and all(alias_id in uri and f'"{find_id}"' not in uri for uri in uris)
    permissions = template.find_resources(
        "AWS::Lambda::Permission", {"Properties": {"Principal": "apigateway.amazonaws.com"}}
    )
    products_id = function(template, PRODUCTS_HANDLER)[0]
    targets = ({"Ref": alias_id}, {"Fn::GetAtt": [products_id, "Arn"]})  # similar products: their own function
    assert permissions and all(p["Properties"]["FunctionName"] in targets for p in permissions.values())
