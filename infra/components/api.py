"""The public HTTP API: a REST API (stage `v1`, API key + usage plan) proxying to find_similar.

One Lambda serves every route; the Powertools resolver in `dupcheck.api` does the routing,
so API Gateway only checks the API key, the required query/path parameters, and throttling.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
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
# Raw uploads (`POST /find_similar` with an image body or a multipart form) reach the
# function base64-encoded; everything else (JSON) arrives as text.
BINARY_MEDIA_TYPES = ["image/*", "multipart/form-data"]

# Query parameters per route: True = required (API Gateway rejects the request with 400).
FIND_SIMILAR_GET_PARAMS = {
    "method.request.querystring.image_url": True,
    "method.request.querystring.top": False,
    "method.request.querystring.max_distance": False,
}
FIND_SIMILAR_POST_PARAMS = {
    "method.request.querystring.top": False,
    "method.request.querystring.max_distance": False,
}
ITEM_PATH_PARAMS = {"method.request.path.entity_id": True}


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
        self.request_validator = self.rest_api.add_request_validator(
            "ParameterValidator",
            request_validator_name="dupcheck-parameters",
            validate_request_parameters=True,
            validate_request_body=False,
        )
        integration = apigw.LambdaIntegration(self.function, proxy=True)

        def route(resource: apigw.IResource, method: str, params: Mapping[str, bool] | None = None) -> None:
            resource.add_method(
                method,
                integration,
                request_parameters=dict(params) if params else None,
                request_validator=self.request_validator,
            )

        root = self.rest_api.root
        find_similar = root.add_resource("find_similar")
        route(find_similar, "GET", FIND_SIMILAR_GET_PARAMS)
        route(find_similar, "POST", FIND_SIMILAR_POST_PARAMS)
        items = root.add_resource("items")
        route(items, "POST")
        item = items.add_resource("{entity_id}")
        route(item, "GET", ITEM_PATH_PARAMS)
        route(item, "DELETE", ITEM_PATH_PARAMS)
        route(root.add_resource("health"), "GET")
        route(root.add_resource("openapi.json"), "GET")

        # Bumping the version replaces the key on the next deploy (hard rotation, docs/deploy.md).
        key_id = "ApiKey" if api_key_version == 1 else f"ApiKeyV{api_key_version}"
        self.api_key = self.rest_api.add_api_key(
            key_id, description=f"dupcheck client key v{api_key_version}"
        )
        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            description="dupcheck default plan",
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            quota=apigw.QuotaSettings(limit=quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )
        self.usage_plan.add_api_key(self.api_key)
        self._suppress_nag()

    def _suppress_nag(self) -> None:
        NagSuppressions.add_resource_suppressions(
            self.rest_api,
            [
                NagPackSuppression(
                    id="AwsSolutions-APIG2",
                    reason="Request parameters are validated by API Gateway (image_url required on GET "
                    "/find_similar, entity_id on /items/{entity_id}). Bodies are raw images, multipart forms "
                    "or JSON that the function validates with pydantic models; no API Gateway body models.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-APIG4",
                    reason="Machine-to-machine API for catalog services: every method requires an API key "
                    "tied to a usage plan (throttle + quota). Put IAM or a Lambda/Cognito authorizer "
                    "in front if end users call it directly.",
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

    @property
    def url(self) -> str:
        """Base URL of stage v1, ending in `/`."""
        return self.rest_api.url
