"""`/duplicates`: the catalog-wide duplicate report, and the scans that make it (started here,
run in the background: locally by the server, on AWS by the scan function)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.contract import responses
from dupcheck.api.exchange import configured, json_response, public_base
from dupcheck.api.params import ScanIdParam, ScansLimitParam
from dupcheck.api.scan_schemas import ScanOut, ScanPage
from dupcheck.api.schemas import DuplicateReport
from dupcheck.core.scans import ScanService
from dupcheck.core.service import DupcheckService


def router(service: DupcheckService, scans: ScanService | None) -> Router:
    routes = Router()

    def scan_service() -> ScanService:
        return configured(scans, "duplicate scans are not set up on this server")

    @routes.get(
        "/duplicates", summary="The catalog-wide duplicate report",
        description="The newest report of a duplicate scan (POST /duplicates/scans) or of `python -m dupcheck "
        "duplicates`: groups of records that hold the same picture. 404 until one is published.",
        responses=responses(200, DuplicateReport, "The newest report.", 403, 404, 503), tags=["duplicates"],
    )  # fmt: skip
    def duplicates() -> DuplicateReport:
        return DuplicateReport.model_validate(service.duplicate_report())

    @routes.post(
        "/duplicates/scans", status_code=202, summary="Start a duplicate scan of the whole catalog",
        description="Answers at once with the scan (`status_url` to follow it); the scan reads every record, "
        "pairs and verifies them as `python -m dupcheck duplicates` does, and publishes its report, which GET "
        "/duplicates then answers. One scan at a time: 409 while another is queued or running.",
        responses=responses(202, ScanOut, "The scan, queued.", 403, 409, 503), tags=["duplicates"],
    )  # fmt: skip
    def start_scan() -> Response[dict]:
        out = ScanOut.of(scan_service().start(), public_base(routes.current_event))
        return json_response(202, out.model_dump(mode="json"), {"Location": out.status_url})

    @routes.get(
        "/duplicates/scans", summary="The newest duplicate scans first",
        responses=responses(200, ScanPage, "The newest scans.", 400, 403, 503), tags=["duplicates"],
    )  # fmt: skip
    def list_scans(limit: ScansLimitParam = None) -> ScanPage:
        base = public_base(routes.current_event)
        return ScanPage(scans=[ScanOut.of(job, base) for job in scan_service().recent(limit)])

    @routes.get(
        "/duplicates/scans/<scan_id>", summary="A duplicate scan: status, phase, progress, what it found",
        responses=responses(200, ScanOut, "The scan.", 400, 403, 404, 503), tags=["duplicates"],
    )  # fmt: skip
    def get_scan(scan_id: ScanIdParam) -> ScanOut:
        return ScanOut.of(scan_service().get(scan_id), public_base(routes.current_event))

    @routes.delete(
        "/duplicates/scans/<scan_id>", summary="Cancel a duplicate scan",
        description="A queued scan never starts; a running one stops at its next progress report (about a "
        "second) and its work is dropped. The report published before stays. 409 when the scan has ended.",
        responses=responses(200, ScanOut, "The scan, cancelled.", 400, 403, 404, 409, 503), tags=["duplicates"],
    )  # fmt: skip
    def cancel_scan(scan_id: ScanIdParam) -> ScanOut:
        return ScanOut.of(scan_service().cancel(scan_id), public_base(routes.current_event))

    return routes
