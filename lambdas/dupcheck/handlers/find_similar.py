"""Lambda: the HTTP API (API Gateway REST proxy) -> the Powertools resolver in `dupcheck.api`.

One function serves every route (find_similar, items, imports, duplicates, health, openapi): the routes are shared
with the local server, and one warm function answers them all from one set of adapters.
Settings are read and validated at import (cold start), so a mis-configured deployment fails
loudly on its first request instead of deep inside one. The handler is decorators plus one call.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.api import build_resolver
from dupcheck.bootstrap import (
    build_imports,
    build_kept_images,
    build_scans,
    build_service,
    imports_configured,
    one_blas_thread,
    scans_configured,
)
from dupcheck.core.settings import Settings
from dupcheck.observability import logger, metrics, observe, tracer

one_blas_thread()
settings = Settings.from_env()
app = build_resolver(
    build_service(settings, observe=observe), max_body_bytes=settings.max_image_bytes,
    imports=build_imports(settings) if imports_configured(settings) else None, images=build_kept_images(settings),
    scans=build_scans(settings) if scans_configured(settings) else None,
)  # fmt: skip


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
