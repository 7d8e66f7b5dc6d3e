"""`/health` and `/openapi.json`: what the service is running, and the contract it answers by."""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.contract import OPEN, responses
from dupcheck.api.exchange import json_response
from dupcheck.api.schemas import Health
from dupcheck.core.catalog.service import DupcheckService


def router(service: DupcheckService, *, contract: Callable[[], str]) -> Router:
    """`contract` writes the OpenAPI document of the resolver these routes end up in."""
    routes = Router()

    @routes.get(
        "/health", summary="Status: the pipeline, record and index counts",
        responses=responses(200, Health, "The service answers.", 503), tags=["status"], openapi_extensions=OPEN,
    )  # fmt: skip
    def health() -> Health:
        return Health.model_validate(service.records.health())

    @routes.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[dict]:
        return json_response(200, json.loads(contract()))

    return routes
