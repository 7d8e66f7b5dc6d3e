"""`/duplicates`: the catalog-wide duplicate report, the scans that make it (started here, run in
the background: locally by the server, on AWS by the scan function), and the decisions a person
makes on its groups (keep one, not duplicates: core/catalog/decisions.py), through which the report is read."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from dupcheck.api.contract import responses
from dupcheck.api.exchange import JobAnswers, configured, json_response, public_base
from dupcheck.api.params import (
    DecisionIdParam,
    DecisionsCursorParam,
    DecisionsLimitParam,
    MarksParam,
    ScanIdParam,
    ScansLimitParam,
)
from dupcheck.api.scan_schemas import (
    DecisionIn,
    DecisionOut,
    DecisionPage,
    KeepDecisionIn,
    ScanOut,
    ScanPage,
    UndoneOut,
)
from dupcheck.api.schemas import DuplicateReport
from dupcheck.core.catalog.decisions import DecisionService
from dupcheck.core.catalog.kept_images import KeptImageLifecycle
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.jobs.scans import ScanService
from dupcheck.core.models import DecisionKind, Marks, ScanJob


def router(service: DupcheckService, scans: ScanService | None, images: KeptImageLifecycle | None = None) -> Router:
    routes = Router()
    answers = JobAnswers[ScanJob, ScanOut](routes, ScanOut.of)

    def scan_service() -> ScanService:
        return configured(scans, "duplicate scans are not set up on this server")

    def decision_service() -> DecisionService:
        stored = configured(service.parts.decisions, "decisions on duplicate groups are not set up on this server "
                            "(DUPCHECK_DECISIONS_TABLE)")  # fmt: skip
        return DecisionService(stored, service, pictures=images)

    @routes.get(
        "/duplicates", summary="The catalog-wide duplicate report",
        description="The newest report of a duplicate scan (POST /duplicates/scans) or of `python -m dupcheck "
        "duplicates`: groups of records that hold the same picture, read through the decisions made on them "
        "(each group's `settled`, `open`; each pair's `reviewed`). 404 until one is published.",
        responses=responses(200, DuplicateReport, "The newest report.", 403, 404, 503), tags=["duplicates"],
    )  # fmt: skip
    def duplicates() -> DuplicateReport:
        report = service.records.duplicate_report()
        if service.parts.decisions is not None:
            report = decision_service().annotate(report)
        return DuplicateReport.model_validate(report)

    @routes.post(
        "/duplicates/scans", status_code=202, summary="Start a duplicate scan of the whole catalog",
        description="Answers at once with the scan (`status_url` to follow it); the scan reads every record, "
        "pairs and verifies them as `python -m dupcheck duplicates` does, a mark on the product read as `marks` "
        "says, and publishes its report, which GET /duplicates then answers. One scan at a time: 409 while another "
        "is queued or running.",
        responses=responses(202, ScanOut, "The scan, queued.", 400, 403, 409, 503), tags=["duplicates"],
    )  # fmt: skip
    def start_scan(marks: MarksParam = None) -> Response[dict]:
        return answers.accepted(scan_service().start(Marks.named(marks) or service.parts.marks))

    @routes.get(
        "/duplicates/scans", summary="The newest duplicate scans first",
        responses=responses(200, ScanPage, "The newest scans.", 400, 403, 503), tags=["duplicates"],
    )  # fmt: skip
    def list_scans(limit: ScansLimitParam = None) -> ScanPage:
        return ScanPage(scans=answers.all(scan_service().recent(limit)))

    @routes.get(
        "/duplicates/scans/<scan_id>", summary="A duplicate scan: status, phase, progress, what it found",
        responses=responses(200, ScanOut, "The scan.", 400, 403, 404, 503), tags=["duplicates"],
    )  # fmt: skip
    def get_scan(scan_id: ScanIdParam) -> ScanOut:
        return answers.one(scan_service().get(scan_id))

    @routes.post(
        "/duplicates/decisions", status_code=201, summary="Settle a group of the duplicate report",
        description="keep: `item` stays and the others are removed (`remove_others`: their copies are kept, so "
        "that an undo puts them back) or left and marked resolved; not_duplicate: `item` and each of `others` are "
        "remembered as different pictures: later reports and find_similar (with `entity_id`) mark the pair "
        "`reviewed`, not a new duplicate. 404 when the record to keep is not in the catalog; 409 when, with "
        "`remove_others`, the record to keep went meanwhile (an opposite decision) or a record to remove was "
        "registered again after the decision read it (nothing is removed, the decision is not kept); 422 "
        "(invalid_decision) when `others` names `item`.",
        responses=responses(201, DecisionOut, "The decision, stored.", 400, 403, 404, 409, 422, 503),
        tags=["duplicates"],
    )  # fmt: skip
    def decide(body: Annotated[DecisionIn, Body(discriminator="decision")]) -> Response[dict]:
        remove = isinstance(body, KeepDecisionIn) and body.remove_others
        decision = decision_service().decide(DecisionKind(body.decision), body.item, body.others,
                                             remove_others=remove)  # fmt: skip
        out = DecisionOut.of(decision, public_base(routes.current_event))
        return json_response(201, out.model_dump(mode="json"), {"Location": out.decision_url})

    @routes.get(
        "/duplicates/decisions", summary="The decisions on duplicate groups, newest first",
        description="Undone decisions stay listed, with `undone_at`.",
        responses=responses(200, DecisionPage, "A page of decisions.", 400, 403, 503), tags=["duplicates"],
    )  # fmt: skip
    def list_decisions(limit: DecisionsLimitParam = None, cursor: DecisionsCursorParam = None) -> DecisionPage:
        found, after = decision_service().recent(limit, cursor)
        base = public_base(routes.current_event)
        return DecisionPage(decisions=[DecisionOut.of(d, base) for d in found], next_cursor=after)

    @routes.get(
        "/duplicates/decisions.csv", summary="Every decision on duplicate groups, as CSV for the back office",
        description="A row per record a decision is about, newest decision first: decision_id, decided_at, "
        "decision, item, item_sku, other, other_sku, outcome (removed; left in the catalog, resolved; not a "
        "duplicate), undone_at. A cell a spreadsheet would evaluate starts with ' (docs/api.md).",
        responses={200: {"description": "The CSV file.", "content": {"text/csv": {"schema": {"type": "string"}}}},
                   **{k: v for k, v in responses(200, None, "", 403, 503).items() if k != 200}},
        tags=["duplicates"],
    )  # fmt: skip
    def export_decisions() -> Response[str]:
        return Response(
            status_code=200, content_type="text/csv; charset=utf-8", body=decision_service().export_csv(),
            headers={"Content-Disposition": 'attachment; filename="duplicate-decisions.csv"'},
        )  # fmt: skip

    @routes.get(
        "/duplicates/decisions/<decision_id>", summary="A decision on a duplicate group",
        responses=responses(200, DecisionOut, "The decision.", 400, 403, 404, 503), tags=["duplicates"],
    )  # fmt: skip
    def get_decision(decision_id: DecisionIdParam) -> DecisionOut:
        return DecisionOut.of(decision_service().get(decision_id), public_base(routes.current_event))

    @routes.post(
        "/duplicates/decisions/<decision_id>/undo", summary="Undo a decision on a duplicate group",
        description="The decision settles nothing any more (it stays listed and readable, with `undone_at`: an "
        "undo is recorded, not a deletion); the records it removed come back, each unless its id was registered "
        "again since. 409 when undone already.",
        responses=responses(200, UndoneOut, "The decision, undone.", 400, 403, 404, 409, 503), tags=["duplicates"],
    )  # fmt: skip
    def undo_decision(decision_id: DecisionIdParam) -> UndoneOut:
        undone = decision_service().undo(decision_id)
        return UndoneOut(decision=DecisionOut.of(undone.decision, public_base(routes.current_event)),
                         restored=list(undone.restored), left_out=list(undone.left_out))  # fmt: skip

    @routes.delete(
        "/duplicates/scans/<scan_id>", summary="Cancel a duplicate scan",
        description="A queued scan never starts; a running one stops at its next progress report (about a "
        "second) and its work is dropped. The report published before stays. 409 when the scan has ended.",
        responses=responses(200, ScanOut, "The scan, cancelled.", 400, 403, 404, 409, 503), tags=["duplicates"],
    )  # fmt: skip
    def cancel_scan(scan_id: ScanIdParam) -> ScanOut:
        return answers.one(scan_service().cancel(scan_id))

    return routes
