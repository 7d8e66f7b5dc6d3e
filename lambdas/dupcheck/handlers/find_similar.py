"""Lambda: the HTTP API (API Gateway REST proxy) -> the Powertools resolver in `dupcheck.api`.

One function serves every route (find_similar, items, imports, health, openapi): the routes are shared
with the local server, and one warm function answers them all from one set of adapters.
Settings are read and validated at import (cold start), so a mis-configured deployment fails
loudly on its first request instead of deep inside one. The handler is decorators plus one call,
and counts the 5xx answers that are an image host's fault, which the API's 5XX alarm leaves out.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.api import build_resolver
from dupcheck.bootstrap import build_imports, build_kept_images, build_service, imports_configured, one_blas_thread
from dupcheck.core.errors import UpstreamError, UpstreamTimeout
from dupcheck.core.settings import Settings
from dupcheck.observability import UPSTREAM_FAULTS_METRIC, logger, metrics, observe, record_metric, tracer

# Error codes of the 5xx answers that blame another server (observability.UPSTREAM_FAULTS_METRIC).
UPSTREAM_CODES = frozenset({UpstreamError.code, UpstreamTimeout.code})

one_blas_thread()
settings = Settings.from_env()
app = build_resolver(
    build_service(settings, observe=observe), max_body_bytes=settings.max_image_bytes,
    imports=build_imports(settings) if imports_configured(settings) else None, images=build_kept_images(settings),
)  # fmt: skip


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    if is_upstream_fault(response):
        record_metric(UPSTREAM_FAULTS_METRIC, 1)
    return response


def is_upstream_fault(response: dict[str, Any]) -> bool:
    """A 5xx answer whose error is another server's (an image host's), not the service's."""
    if int(response.get("statusCode", 200)) < 500 or response.get("isBase64Encoded"):
        return False
    try:
        error = json.loads(response.get("body") or "{}").get("error", {})
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("code") in UPSTREAM_CODES
