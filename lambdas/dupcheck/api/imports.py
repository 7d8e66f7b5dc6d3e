"""`/imports`: catalog import jobs: start one (a file, a catalog URL, rows, or an upload to come),
follow it, list its failed rows, cancel it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import ValidationError

from dupcheck.api.contract import CATALOG_BODY, CATALOG_UPLOAD_BODY, responses
from dupcheck.api.errors import request_error
from dupcheck.api.exchange import JobAnswers, configured, json_response, public_base, raw_body
from dupcheck.api.import_schemas import (
    IMPORT_REQUEST,
    CatalogUrlImport,
    FailureOut,
    FailurePage,
    ImportOut,
    ImportPage,
    ItemsImport,
    ResultOut,
    ResultPage,
    UploadImport,
)
from dupcheck.api.params import (
    DuplicatesOnlyParam,
    FailuresLimitParam,
    FormatParam,
    IdColumnParam,
    ImageBaseUrlParam,
    ImportPolicyParam,
    JobIdParam,
    JobsCursorParam,
    LimitParam,
    MarksParam,
    ModeParam,
    RowCursorParam,
    SkuColumnParam,
    UrlColumnParam,
)
from dupcheck.api.resolver import DupcheckResolver
from dupcheck.api.uploads import uploaded_catalog
from dupcheck.core.catalog.gate import policy_of
from dupcheck.core.errors import InvalidRequest, ServerBusy
from dupcheck.core.jobs.imports import UPLOAD_EXPIRES_S, ImportService
from dupcheck.core.models import IMPORT_POLICIES, Columns, ImportJob, ImportOptions, Marks, Mode, UploadTarget

RESULTS = "A page of checked rows (format=csv: text/csv, every row)."
RESULTS_FILE = ("format=csv where the answer cannot be streamed (AWS): the CSV was written to storage; Location "
                "is its download link (15 minutes).")  # fmt: skip
# What the AWS route leaves of the function's time after writing a results file: its answer, and
# a part in flight; and the time it takes it has without a Lambda context (API Gateway's 29 s).
ANSWER_MARGIN_S = 5.0
WITHOUT_A_CONTEXT_S = 29.0


def router(imports: ImportService | None) -> Router:
    routes = Router()
    answers = JobAnswers[ImportJob, ImportOut](routes, ImportOut.of)
    accepted = answers.accepted

    def service() -> ImportService:
        return configured(imports, "catalog imports are not set up on this server")

    @routes.post(
        "/imports", status_code=202, summary="Import a catalog: a job that downloads and hashes every row",
        description="Answers at once with the job (`status_url` to follow it); the rows are imported in the "
        "background, each stored, skipped (already stored unchanged) or failed with its reason.",
        responses=responses(202, ImportOut, "The job, queued (or waiting for its upload).", 400, 403, 413, 422, 503),
        tags=["imports"], openapi_extensions=CATALOG_BODY,
    )  # fmt: skip
    def create_import(
        image_base_url: ImageBaseUrlParam = None, id_column: IdColumnParam = None,
        sku_column: SkuColumnParam = None, url_column: UrlColumnParam = None, mode: ModeParam = None,
        on_duplicate: ImportPolicyParam = None, marks: MarksParam = None,
    ) -> Response[dict]:  # fmt: skip
        jobs = service()
        policy = policy_of(on_duplicate, jobs.on_duplicate, IMPORT_POLICIES)
        options = ImportOptions(Columns(id_column or "entity_id", sku_column or "sku", url_column), image_base_url,
                                Mode(mode or Mode.IMPORT), policy, Marks.named(marks) or jobs.marks)  # fmt: skip
        event = routes.current_event
        content_type = event.headers.get("content-type") or ""
        body = raw_body(event)
        if content_type.split(";")[0].strip().lower() != "application/json":
            return accepted(jobs.submit_catalog(uploaded_catalog(body, content_type, jobs.max_catalog_bytes), options))
        request = _import_request(body)
        if isinstance(request, CatalogUrlImport):
            return accepted(jobs.submit_url(request.catalog_url, options))
        if isinstance(request, ItemsImport):
            return accepted(jobs.submit_items([item.model_dump() for item in request.items], options))
        job = jobs.submit_for_upload(options)
        return accepted(job, jobs.upload_target(job) or _own_upload(job, public_base(event), jobs.max_catalog_bytes))

    @routes.put(
        "/imports/<job_id>/catalog", status_code=202, summary="Upload the catalog of an upload: true import",
        description="For an import created with upload: true where storage takes no upload of its own (the "
        "local server); on AWS the answer's upload form goes straight to S3.",
        responses=responses(202, ImportOut, "The job, queued.", 400, 403, 404, 409, 413, 422, 503),
        tags=["imports"], openapi_extensions=CATALOG_UPLOAD_BODY,
    )  # fmt: skip
    def upload_catalog(job_id: JobIdParam) -> Response[dict]:
        jobs = service()
        event = routes.current_event
        data = uploaded_catalog(raw_body(event), event.headers.get("content-type") or "", jobs.max_catalog_bytes)
        return accepted(jobs.receive_catalog(job_id, data))

    @routes.get(
        "/imports", summary="Recent import jobs, newest first",
        responses=responses(200, ImportPage, "A page of jobs.", 400, 403, 503), tags=["imports"],
    )  # fmt: skip
    def list_imports(limit: LimitParam = None, cursor: JobsCursorParam = None) -> ImportPage:
        after = tuple(cursor.split("~")) if cursor else None
        found, position = service().recent(20 if limit is None else limit, after)  # type: ignore[arg-type]
        return ImportPage(imports=answers.all(found),
                          next_cursor="~".join(position) if position else None)  # fmt: skip

    @routes.get(
        "/imports/<job_id>", summary="An import job: status, counts, rate",
        responses=responses(200, ImportOut, "The job.", 400, 403, 404, 503), tags=["imports"],
    )  # fmt: skip
    def get_import(job_id: JobIdParam) -> ImportOut:
        return answers.one(service().get(job_id))

    @routes.get(
        "/imports/<job_id>/failures", summary="The failed rows of an import, with their reasons",
        description="In catalog order; the codes are the backfill's failures file's (docs/backfill.md).",
        responses=responses(200, FailurePage, "A page of failed rows.", 400, 403, 404, 503), tags=["imports"],
    )  # fmt: skip
    def import_failures(job_id: JobIdParam, limit: FailuresLimitParam = None, cursor: RowCursorParam = None
                        ) -> FailurePage:  # fmt: skip
        found, last = service().failures(job_id, limit, int(cursor) if cursor else 0)
        return FailurePage(failures=[FailureOut.of(f) for f in found],
                           next_cursor=str(last) if last is not None else None)  # fmt: skip

    @routes.get(
        "/imports/<job_id>/results", summary="A job's checked rows: a check job's verdicts, an import's duplicates",
        description="In catalog order: each row's verdict, what it duplicates (a catalog item, or an earlier row "
        "of the same file) and its best match with its edits; a check job's rows that could not be checked too "
        "(failed, no verdict). format=csv: every row as a CSV file to download: streamed (the local server), or "
        "for a finished job written to storage and answered 303 to its link (AWS: 409 while the job runs, 503 "
        "with Retry-After while a large file is still being written).",
        responses={**responses(200, ResultPage, RESULTS, 400, 403, 404, 409, 503),
                   200: {"description": RESULTS, "content": {"application/json": {"model": ResultPage},
                                                             "text/csv": {"schema": {"type": "string"}}}},
                   303: {"description": RESULTS_FILE, "headers": {"Location": {
                       "description": "The CSV's download link.", "schema": {"type": "string"}}},
                         "content": {"application/json": {"schema": {
                             "type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}}}}},
        tags=["imports"],
    )  # fmt: skip
    def import_results(job_id: JobIdParam, limit: FailuresLimitParam = None, cursor: RowCursorParam = None,
                       duplicates_only: DuplicatesOnlyParam = None, format: FormatParam = None,  # noqa: A002
                       ) -> Response[Any]:  # fmt: skip
        jobs = service()
        if format == "csv":
            return _results_csv(routes, jobs, job_id, bool(duplicates_only))
        found, last = jobs.results(job_id, limit, int(cursor) if cursor else 0, duplicates_only=bool(duplicates_only))
        page = ResultPage(results=[ResultOut.of(r) for r in found], next_cursor=str(last) if last is not None else None)
        return json_response(200, page.model_dump(mode="json"))

    @routes.delete(
        "/imports/<job_id>", summary="Cancel an import",
        description="Rows not yet started are not imported; rows already stored stay stored. 409 when the job "
        "has already finished.",
        responses=responses(200, ImportOut, "The job, cancelled.", 400, 403, 404, 409, 503), tags=["imports"],
    )  # fmt: skip
    def cancel_import(job_id: JobIdParam) -> ImportOut:
        return answers.one(service().cancel(job_id))

    return routes


def _results_csv(routes: Router, jobs: ImportService, job_id: str, duplicates_only: bool) -> Response[Any]:
    """The results as a CSV file: streamed a page at a time where the server can send an answer in
    pieces (the local one), else written to storage (`ImportService.results_file`) and answered with
    a 303 to its download link: a Lambda's answer holds 6 MB, an API Gateway request 29 s."""
    resolver = routes.api_resolver
    if isinstance(resolver, DupcheckResolver) and resolver.streams_answers:
        jobs.get(job_id)
        resolver.stream(piece for _, piece in jobs.results_csv(job_id, duplicates_only=duplicates_only))
        return Response(status_code=200, content_type="text/csv; charset=utf-8", body="",
                        headers={"Content-Disposition": f'attachment; filename="dupcheck-{job_id}.csv"'})  # fmt: skip
    context = routes.lambda_context  # None where the resolver is called without one (scripts, tests)
    left_s = context.get_remaining_time_in_millis() / 1000 if context is not None else WITHOUT_A_CONTEXT_S
    link = jobs.results_file(job_id, duplicates_only=duplicates_only, until=time.monotonic() + left_s - ANSWER_MARGIN_S)
    if link is None:
        raise ServerBusy(f"the results CSV of import {job_id} is long: it is written a part at a time, and the "
                         "next part is written when you ask again", retry_after_s=1)  # fmt: skip
    return Response(status_code=303, content_type="application/json", body={"url": link}, headers={"Location": link})


def _own_upload(job: ImportJob, base_url: str, max_bytes: int) -> UploadTarget:
    """Where storage has no upload of its own, the catalog is PUT to this API."""
    expires = datetime.fromisoformat(job.created_at.replace("Z", "+00:00")) + timedelta(seconds=UPLOAD_EXPIRES_S)
    return UploadTarget(url=f"{base_url}/imports/{job.job_id}/catalog", method="PUT", fields={},
                        expires_at=expires.isoformat().replace("+00:00", "Z"), max_bytes=max_bytes)  # fmt: skip


# Each kind of body by the field that names it: a body with one of them is told what is wrong with
# that kind alone ("upload: must be true..."), not what every other kind would have wanted.
_KINDS = {"catalog_url": CatalogUrlImport, "items": ItemsImport, "upload": UploadImport}


def _import_request(body: bytes) -> Any:
    try:
        return IMPORT_REQUEST.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        kind = _kind_of(body)
        if kind is not None:
            raise request_error([e for e in errors if e["loc"][:1] == (kind.__name__,)][:5]) from exc
        must = 'the body must be one of {"catalog_url": ...}, {"items": [...]} (1 to 1,000) or {"upload": true}: '
        raise request_error(errors[:5], must) from exc
    except RecursionError as exc:
        raise InvalidRequest("the body is not valid JSON") from exc


def _kind_of(body: bytes) -> type | None:
    """The kind of import body `body` is meant to be: the one whose field it holds (only one)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    named = [_KINDS[key] for key in data if key in _KINDS] if isinstance(data, dict) else []
    return named[0] if len(named) == 1 else None
