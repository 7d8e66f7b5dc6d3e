"""`/duplicates`: the catalog-wide duplicate report."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.contract import responses
from dupcheck.api.schemas import DuplicateReport
from dupcheck.core.service import DupcheckService


def router(service: DupcheckService) -> Router:
    routes = Router()

    @routes.get(
        "/duplicates", summary="The catalog-wide duplicate report",
        description="The newest report of `python -m dupcheck duplicates`: groups of records that hold the "
        "same picture. 404 until one is published.",
        responses=responses(200, DuplicateReport, "The newest report.", 403, 404, 503), tags=["duplicates"],
    )  # fmt: skip
    def duplicates() -> DuplicateReport:
        return DuplicateReport.model_validate(service.duplicate_report())

    return routes
