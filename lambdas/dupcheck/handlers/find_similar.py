"""Lambda: the HTTP API (API Gateway REST proxy) -> the Powertools resolver in `dupcheck.api`.

One function serves every route (find_similar, items, imports, duplicates, health, openapi): the routes are shared
with the local server, and one warm function answers them all from one set of adapters.
Settings are read and validated at import (cold start), so a mis-configured deployment fails
loudly on its first request instead of deep inside one. The handler is decorators plus one call,
and counts the 5xx answers that are an image host's fault, which the API's 5XX alarm leaves out.

SnapStart (infra/components/api.py): Lambda runs this module once per published version, then
starts every new environment from a snapshot of that memory. Two runtime hooks make that safe
and worth it. Before the snapshot: load what the first request would otherwise load (the
OpenSearch client library, imported on first use, and Pillow's image plugins). After a restore:
nothing the snapshot fixed may be shared between environments, so the random generators are
reseeded and the adapters built again: new boto3 and OpenSearch clients, with connection pools
that hold no socket from the snapshot and credentials resolved now, not when the version was
published.
"""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import botocore.session
import numpy as np
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from snapshot_restore_py import register_after_restore, register_before_snapshot

from dupcheck.api import build_resolver
from dupcheck.bootstrap import (
    build_imports,
    build_kept_image_lifecycle,
    build_scans,
    build_service,
    imports_configured,
    one_blas_thread,
    scans_configured,
)
from dupcheck.core.errors import UpstreamError, UpstreamTimeout
from dupcheck.core.settings import Settings
from dupcheck.observability import UPSTREAM_FAULTS_METRIC, lambda_entry, observe, record_metric

# Error codes of the 5xx answers that blame another server (observability.UPSTREAM_FAULTS_METRIC).
UPSTREAM_CODES = frozenset({UpstreamError.code, UpstreamTimeout.code})

one_blas_thread()
settings = Settings.from_env()


def build_app() -> APIGatewayRestResolver:
    """The API over adapters built now: their clients, connection pools and credentials."""
    service = build_service(settings, observe=observe)
    return build_resolver(
        service, max_body_bytes=settings.max_image_bytes,
        imports=build_imports(settings) if imports_configured(settings) else None,
        images=service.parts.kept or build_kept_image_lifecycle(settings, service.parts.store),
        scans=build_scans(settings) if scans_configured(settings) else None,
    )  # fmt: skip


app = build_app()


@register_before_snapshot
def before_snapshot() -> None:
    """What a first request would load, loaded into the snapshot instead (module doc)."""
    import opensearchpy.helpers  # noqa: F401 - the index adapter imports it on first use
    from PIL import Image

    Image.init()  # every image plugin, not only the few Pillow loads at import


@register_after_restore
def after_restore() -> None:
    """Nothing from the snapshot shared between environments (module doc)."""
    global app
    random.seed()  # from os.urandom: each environment its own sequence
    np.random.seed()
    new_boto3_session()
    app = build_app()


def new_boto3_session() -> None:
    """A new default boto3 session, whose credentials are resolved again (not the snapshot's). It
    keeps the service models the old one already parsed: reading them again would more than
    double what the hook costs a restored start (docs/lab/benchmarks.md)."""
    old = boto3.DEFAULT_SESSION
    fresh = botocore.session.Session()
    if old is not None:
        fresh.register_component("data_loader", old._session.get_component("data_loader"))
    boto3.setup_default_session(botocore_session=fresh)


@lambda_entry(correlation_paths.API_GATEWAY_REST)
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
