"""Lambda: `/similar_products` (API Gateway REST proxy) -> the Powertools resolver in `dupcheck.api`.

A function of its own, with the product model and onnxruntime (~80 MB) in its bundle, so that the
find_similar function's bundle and cold start stay as they were (infra/components/products.py).
API Gateway sends it only the `/similar_products` paths; it resolves them with the same routes as
the local server. Settings are validated and the model loaded at cold start.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.api import build_resolver
from dupcheck.bootstrap import build_product_search, build_service, one_blas_thread
from dupcheck.core.settings import Settings
from dupcheck.observability import lambda_entry, observe

one_blas_thread()
settings = Settings.from_env()


service = build_service(settings, observe=observe)
search = build_product_search(settings, service)  # the model, loaded now; None only with DUPCHECK_PRODUCTS=off
app: APIGatewayRestResolver = build_resolver(service, max_body_bytes=settings.max_image_bytes, products=search)


@lambda_entry(correlation_paths.API_GATEWAY_REST)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
