"""The public HTTP API: a REST API (stage `v1`, API key + usage plan) proxying to find_similar.

One Lambda serves every route; the Powertools resolver in `dupcheck.api` does the routing, the
validation and the error bodies, exactly as it does locally. It runs with SnapStart: API Gateway
invokes the alias `live`, which each deploy moves to the newly published (and snapshotted)
version, so no request pays the cold import (docs/deploy.md, "Cold start"). So API Gateway proxies every path
and method (`ANY /{proxy+}`): a trailing slash, HEAD, OPTIONS and a method a route lacks (405
with Allow) are answered by the function, the same as on the local server. API Gateway checks
the API key, throttles, and answers its own refusals (a missing key, throttling, a body over
its 10 MB limit) with the API's JSON error body (gateway responses below).

Open without a key: /health (status), /openapi.json and /docs (the public contract), and the web
app: its page at the stage's root `/` and its files under /web/. The page shows nothing until the
person using it gives the key, which it then sends with every API call (dupcheck/api/web.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.components.function import dupcheck_function

HANDLER = "dupcheck.handlers.find_similar.handler"
MEMORY_MB = 1024
# API Gateway's integration timeout is 29 s; a longer function timeout would only hide errors.
TIMEOUT = Duration.seconds(29)
STAGE_NAME = "v1"
ALIAS_NAME = "live"  # the published version API Gateway invokes (SnapStart covers versions only)
# Raw uploads (`POST /find_similar` with an image body or a multipart form, a gzipped catalog for
# `POST /imports`) reach the function base64-encoded; everything else (JSON, CSV) arrives as text.
# A base64 answer (a kept image, GET /images/...) leaves as bytes when the request accepts image/*.
BINARY_MEDIA_TYPES = ["image/*", "multipart/form-data", "application/octet-stream", "application/gzip"]
OPEN_PATHS = ("health", "openapi.json", "docs")  # answered without an API key
WEB_FILES = "web"  # the web app's files, /web/{proxy+}, also without a key (its page is `/`)
OPEN_RATE_LIMIT, OPEN_BURST_LIMIT = 10, 20  # requests/s for each open path, from all callers together
# A page load fetches its ~10 files at once: room for a few people opening the app together.
WEB_RATE_LIMIT, WEB_BURST_LIMIT = 20, 60

# API Gateway's own refusals, in the API's error format {"error": {"code", "message"}}.
_MESSAGE = "$context.error.messageString"  # already a quoted JSON string
GATEWAY_ERRORS: dict[str, tuple[apigw.ResponseType, str, str]] = {
    "MissingKey": (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "403", "forbidden"),
    "InvalidKey": (apigw.ResponseType.INVALID_API_KEY, "403", "forbidden"),
    "Throttled": (apigw.ResponseType.THROTTLED, "429", "throttled"),
    "Quota": (apigw.ResponseType.QUOTA_EXCEEDED, "429", "quota_exceeded"),
    "TooLarge": (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "image_too_large"),
    "Timeout": (apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "timeout"),
    "Other4xx": (apigw.ResponseType.DEFAULT_4_XX, "", "invalid_request"),
    "Other5xx": (apigw.ResponseType.DEFAULT_5_XX, "", "gateway_error"),
}


class Api(Construct):
    """find_similar function + REST API + API key, usage plan and access logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        rate_limit: float,
        burst_limit: int,
        quota_per_day: int,
        api_key_version: int = 1,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)

        self.function = dupcheck_function(
            self,
            "FindSimilarFunction",
            description="dupcheck HTTP API: find_similar, items, health",
            handler=HANDLER,
            code=code,
            environment=environment,
            memory_mb=MEMORY_MB,
            timeout=TIMEOUT,
            log_retention=log_retention,
            snap_start=True,
        )
        self.alias = self.function.add_alias(ALIAS_NAME)
        # CDK warns that SnapStart needs a published version whatever the function has: it has one.
        Annotations.of(self.function).acknowledge_warning(
            "@aws-cdk/aws-lambda:snapStartRequirePublish",
            "each deploy publishes a version and API Gateway invokes it through the alias `live`",
        )

        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{Stack.of(self).stack_name}-api",
            description="dupcheck near-duplicate image detection",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=BINARY_MEDIA_TYPES,
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            default_method_options=apigw.MethodOptions(api_key_required=True),
            # Access logging needs the account-level API Gateway -> CloudWatch role.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                # The open routes answer without a key, so no usage plan throttles them: the stage does.
                method_options={
                    **{
                        f"/{path}/*": apigw.MethodDeploymentOptions(
                            throttling_rate_limit=OPEN_RATE_LIMIT, throttling_burst_limit=OPEN_BURST_LIMIT
                        )
                        for path in ("", *OPEN_PATHS)  # "": the web app's page, `/`
                    },
                    f"/{WEB_FILES}/{{proxy+}}/*": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=WEB_RATE_LIMIT, throttling_burst_limit=WEB_BURST_LIMIT
                    ),
                },
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
        )
        # The stage's URL is the stack's `ApiUrl` output; the one RestApi adds by itself would repeat it.
        self.rest_api.node.try_remove_child("Endpoint")
        integration = apigw.LambdaIntegration(self.alias, proxy=True)
        root = self.rest_api.root
        root.add_method("ANY", integration, api_key_required=False)  # the web app's page
        root.add_resource("{proxy+}").add_method("ANY", integration)
        for path in OPEN_PATHS:
            root.add_resource(path).add_method("ANY", integration, api_key_required=False)
        web_files = root.add_resource(WEB_FILES).add_resource("{proxy+}")
        web_files.add_method("ANY", integration, api_key_required=False)
        self._root = root
        for gateway_id, (response_type, status, code) in GATEWAY_ERRORS.items():
            self.rest_api.add_gateway_response(
                gateway_id,
                type=response_type,
                status_code=status or None,
                templates={"application/json": f'{{"error": {{"code": "{code}", "message": {_MESSAGE}}}}}'},
            )

        # Bumping the version replaces the key on the next deploy (hard rotation, docs/deploy.md).
        key_id = "ApiKey" if api_key_version == 1 else f"ApiKeyV{api_key_version}"
        self.api_key = self.rest_api.add_api_key(key_id, description=f"dupcheck client key v{api_key_version}")
        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            description="dupcheck default plan",
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            quota=apigw.QuotaSettings(limit=quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )
        self.usage_plan.add_api_key(self.api_key)
        self._suppress_nag()

    def _suppress_nag(self, scope: Construct | None = None) -> None:
        NagSuppressions.add_resource_suppressions(
            scope or self.rest_api,
            [
                NagPackSuppression(
                    id="AwsSolutions-APIG2",
                    reason="Every request is validated by the function (Powertools with pydantic models, "
                    "the same code as the local server), which answers with the API's JSON errors; API "
                    "Gateway proxies every path so that one contract (docs/openapi.json) holds everywhere.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-APIG4",
                    reason="Machine-to-machine API for catalog services: every method requires an API key "
                    "tied to a usage plan (throttle + quota), but /health, /openapi.json, /docs and the web "
                    "app's page and files, which show no catalog data (the page's calls carry the key). Put "
                    "IAM or a Lambda/Cognito authorizer in front if end users call it directly.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-COG4",
                    reason="No end-user identities: callers are services holding an API key (see APIG4).",
                ),
                NagPackSuppression(
                    id="AwsSolutions-APIG3",
                    reason="No WAF by default (about $5/month + $1/rule + per-request); the usage plan "
                    "throttles per key. docs/deploy.md explains attaching a WAFv2 web ACL to stage v1.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="The account-level API Gateway CloudWatch role (needed for access logs) uses the "
                    "AWS managed AmazonAPIGatewayPushToCloudWatchLogs policy, as AWS documents.",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                    ],
                ),
            ],
            apply_to_children=True,
        )

    def route(self, path: str, function: lambda_.IFunction) -> None:
        """Send `/path` (every method, the API key required) to another function than find_similar:
        a path API Gateway names is matched before `{proxy+}` (similar products, infra/components/products.py)."""
        resource = self._root.add_resource(path)
        resource.add_method("ANY", apigw.LambdaIntegration(function, proxy=True))
        self._suppress_nag(resource)  # the reasons below hold for it too (added after the API)

    @property
    def url(self) -> str:
        """Base URL of stage v1, ending in `/`."""
        return self.rest_api.url
