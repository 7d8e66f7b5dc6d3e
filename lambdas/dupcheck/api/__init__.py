"""HTTP API v1, written once: the Lambda handler and the local server both resolve through it.

One module per concern, each a Powertools `Router` built around what it serves (find, items,
imports, images, duplicates, status, web); `build_resolver` puts them together with the contract's
header and the error mapping (errors.py, the one place a failure becomes its status). Routes
validate parameters (params.py), call one service method and return a response model
(schemas.py). The OpenAPI document is generated from the same routes and models and committed
as docs/openapi.json (contract.py).

A resolver keeps per-request state on itself (resolver.py): each call builds new routers and
one resolver, and the local server builds one per thread; a router reads the event through the
resolver that included it.
"""

from __future__ import annotations

from functools import partial

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from dupcheck.api import duplicates, find, items, status, web
from dupcheck.api import images as image_routes
from dupcheck.api import imports as import_routes
from dupcheck.api import products as product_routes
from dupcheck.api.contract import (
    API_DESCRIPTION,
    API_KEY_HEADER,
    API_TITLE,
    API_VERSION,
    SECURITY_SCHEME,
    openapi_document,
)
from dupcheck.api.errors import answer_errors
from dupcheck.api.resolver import DupcheckResolver
from dupcheck.core.catalog.kept_images import KeptImageLifecycle
from dupcheck.core.catalog.products import ProductSearch
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.jobs.imports import ImportService
from dupcheck.core.jobs.scans import ScanService

__all__ = ["API_KEY_HEADER", "build_resolver", "openapi_document"]


def build_resolver(
    service: DupcheckService, *, max_body_bytes: int, imports: ImportService | None = None,
    images: KeptImageLifecycle | None = None, scans: ScanService | None = None, keyed: bool = True,
    products: ProductSearch | None = None, streams_answers: bool = False,
) -> DupcheckResolver:  # fmt: skip
    """The API's routes over `service`; `imports`, `images`, `scans` and `products` add import jobs,
    kept images, duplicate scans and similar products (without them those routes answer 503).
    `keyed`: the routes need the API key (always on AWS; a local server only with DUPCHECK_API_KEY), as the served
    /openapi.json says. `streams_answers`: the caller sends a streamed body (resolver.py; the local server)."""
    app = DupcheckResolver(streams_answers=streams_answers)
    app.configure_openapi(
        title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION,
        security_schemes={SECURITY_SCHEME: APIKey(name=API_KEY_HEADER, in_=APIKeyIn.header)},  # type: ignore[call-arg]
        security=[{SECURITY_SCHEME: []}],
    )  # fmt: skip
    app.enable_swagger(path="/docs")
    for router in (
        find.router(service, max_body_bytes=max_body_bytes),
        product_routes.router(products, max_body_bytes=max_body_bytes),
        items.router(service, images, max_body_bytes=max_body_bytes),
        import_routes.router(imports),
        image_routes.router(images, max_body_bytes=max_body_bytes, max_pixels=service.parts.max_pixels),
        duplicates.router(service, scans, images),
        status.router(service, contract=partial(openapi_document, app, keyed=keyed)),
        web.router(),
    ):
        app.include_router(router)
    answer_errors(app)
    return app
