"""HTTP API v1, written once: the Lambda handler and the local server both resolve through it.

Routes validate parameters (Powertools + pydantic), call one service method and return a
response model (schemas.py); every failure leaves as its status with `error_body`. The OpenAPI
document is generated from the same routes and models and committed as docs/openapi.json.
A resolver keeps per-request state on itself: build one per thread (resolver.py).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import ValidationError

from dupcheck.api import web
from dupcheck.api.import_schemas import (
    IMPORT_REQUEST,
    CatalogUrlImport,
    FailureOut,
    FailurePage,
    ImportOut,
    ImportPage,
    ItemsImport,
    KeptImageOut,
    inline_schema,
)
from dupcheck.api.resolver import STAGE_PREFIX, DupcheckResolver
from dupcheck.api.schemas import (
    CURSOR_PATTERN,
    IMAGE_URL_PATTERN,
    DuplicateReport,
    ErrorBody,
    FindResponse,
    Health,
    ImageUrl,
    ItemOut,
    ItemPage,
    NewItem,
    PhotoUpload,
)
from dupcheck.api.uploads import CATALOG_FIELDS, FILE_FIELDS, uploaded_catalog, uploaded_image
from dupcheck.core.catalog import Columns
from dupcheck.core.errors import DupcheckError, InvalidRequest, NotFound, StoreUnavailable, error_body
from dupcheck.core.ids import ID_PATTERN, MAX_ID_LENGTH
from dupcheck.core.imaging import decode_image
from dupcheck.core.imports import UPLOAD_EXPIRES_S, ImportJob, ImportOptions, ImportService, UploadTarget
from dupcheck.core.kept_images import IMAGE_NAME_PATTERN, IMAGES_PATH, KeptImages, content_type, image_name
from dupcheck.core.service import MAX_PAGE, MAX_TOP, MAX_URL_LENGTH, DupcheckService

logger = logging.getLogger(__name__)

API_TITLE = "dupcheck"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Near-duplicate image detection for e-commerce catalogs: is this image already in my catalog? "
    "Every route but /health (and the web app's page) needs the API key in the x-api-key header (on AWS "
    'always; locally when DUPCHECK_API_KEY is set). Errors are always JSON: {"error": {"code", "message"}}.'
)
API_KEY_HEADER = "x-api-key"
OPEN: dict[str, Any] = {"security": []}  # an operation that needs no API key

TopParam = Annotated[int | None, Query(ge=1, le=MAX_TOP, description="How many matches (1-100, default 5).")]
MaxDistanceParam = Annotated[
    int | None, Query(ge=0, le=64, description="Drop matches whose hash distance (of 64 bits) is larger.")
]
EntityIdParam = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The item's entity_id.")]
NewEntityIdParam = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="The entity_id to store "
              "it under (docs/api.md, ids).", json_schema_extra={"not": {"enum": [".", ".."]}})
]  # fmt: skip
ImageUrlParam = Annotated[
    ImageUrl, Query(min_length=1, max_length=MAX_URL_LENGTH, description="http(s) URL of the image.",
                    json_schema_extra={"pattern": IMAGE_URL_PATTERN})
]  # fmt: skip
PublishedUrlParam = Annotated[
    ImageUrl | None, Query(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": IMAGE_URL_PATTERN},
                           description="Where the catalog publishes the picture (kept, never fetched).")
]  # fmt: skip
SkuParam = Annotated[str | None, Query(max_length=256, description="The item's SKU.")]
LimitParam = Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Records per page (1-100, default 20).")]
CursorParam = Annotated[
    str | None, Query(min_length=2, max_length=4096, pattern=CURSOR_PATTERN,
                      description="next_cursor of the previous page; absent for the first.")
]  # fmt: skip
SearchParam = Annotated[
    str | None, Query(max_length=200, description="Keep records whose entity_id or SKU contains this, ignoring case.")
]
IncludeParam = Annotated[str | None, Query(pattern="^features$", description="`features`: add the stored views.")]
JobIdParam = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The import's job_id.")]
ImageBaseUrlParam = Annotated[
    ImageUrl | None, Query(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": IMAGE_URL_PATTERN},
                           description="The shop's media base URL: relative image paths (small_image) are "
                           "appended to it.")
]  # fmt: skip
IdColumnParam = Annotated[str | None, Query(min_length=1, max_length=100, description="The id column (entity_id).")]
SkuColumnParam = Annotated[str | None, Query(min_length=1, max_length=100, description="The SKU column (sku).")]
UrlColumnParam = Annotated[
    str | None, Query(min_length=1, max_length=100, description="The image URL column (image_url, else small_image).")
]
FailuresLimitParam = Annotated[int | None, Query(ge=1, le=1000, description="Failures per page (1-1000, default 100).")]
# Where a page of jobs or of failures goes on from: a job's created_at and id; a row number.
JobsCursorParam = Annotated[
    str | None, Query(pattern=r"^[0-9A-Za-z:.+-]{1,40}~[0-9a-f]{32}$",
                      description="next_cursor of the previous page; absent for the newest jobs.")
]  # fmt: skip
RowCursorParam = Annotated[
    str | None, Query(pattern=r"^[0-9]{1,10}$", description="next_cursor of the previous page; absent for the first.")
]
ImageNameParam = Annotated[str, Path(pattern=IMAGE_NAME_PATTERN, description="<sha256>.<ext> of the picture.")]

_REASONS = {
    400: "A parameter or the body is missing or malformed (`invalid_request`).",
    403: "The image URL is not allowed (`url_not_allowed`: scheme, address or host), or the API key is "
    "missing or wrong (`forbidden`).",
    404: "No such item, import, picture or duplicate report, or an id no route takes (`not_found`).",
    409: "The import is not in a state that allows this: finished, or its catalog already given (`conflict`).",
    413: "The image is over the byte or pixel limit, or would take more memory to decode than one image may "
    "(`image_too_large`); or the catalog is over the byte or row limit (`catalog_too_large`).",
    415: "Not an image format dupcheck decodes, or the wrong body type (`unsupported_media_type`).",
    422: "A supported format, but corrupt or truncated (`invalid_image`); a catalog that cannot be read: no "
    "entity_id or URL column, not UTF-8, no rows (`invalid_catalog`).",
    500: "An internal error (`internal_error`): a bug, logged with the request id.",
    502: "The image host failed or redirected somewhere malformed (`upstream_error`).",
    503: "The store or the search index cannot be reached now (`store_unavailable`, `index_unavailable`), or "
    "too many large images are being decoded at once (`server_busy`: Retry-After says when to come back).",
    504: "The image host was too slow (`upstream_timeout`).",
}


def _responses(success: int, model: type | None, description: str, *errors: int) -> dict[int, Any]:
    """A route's OpenAPI responses: its success (with `model` as the body) and its error statuses,
    each with the error body (500 on every route: a bug, but a documented shape)."""
    ok: dict[str, Any] = {"description": description}
    if model is not None:
        ok["content"] = {"application/json": {"model": model}}
    body = {"content": {"application/json": {"model": ErrorBody}}}
    out = {success: ok, **{status: {"description": _REASONS[status], **body} for status in (*errors, 500)}}
    if 503 in out:
        out[503]["headers"] = RETRY_AFTER
    return out


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again (server_busy).",
                               "schema": {"type": "integer", "minimum": 1}}}  # fmt: skip


_FILE = {"type": "string", "format": "binary", "minLength": 1}
_BINARY = {"schema": _FILE}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: its bytes, a multipart form with a file field "
        f"({', '.join(FILE_FIELDS)}; else the first part with a filename), or JSON photoData. "
        "The format is decided from the bytes, never from Content-Type.",
        "content": {
            "image/*": _BINARY,
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": _FILE},
                    "required": ["file"],
                }
            },
            "application/json": {"schema": PhotoUpload.model_json_schema()},
        },
    }
}


CATALOG_BODY = {
    "requestBody": {
        "required": True,
        "description": "The catalog: CSV (a header row, then entity_id, sku, image_url or small_image) or JSON "
        "Lines, UTF-8, optionally gzipped; as the body itself or a multipart form's file "
        f"({', '.join(CATALOG_FIELDS)}). Or JSON: a catalog_url to download, items (up to 1,000 rows), or "
        "upload: true for a catalog sent afterwards (docs/api.md, imports).",
        "content": {
            "text/csv": _BINARY,  # a file: any bytes (UTF-8 text is what it reads)
            "application/x-ndjson": _BINARY,
            "application/gzip": _BINARY,
            "multipart/form-data": {"schema": {"type": "object", "properties": {"file": _FILE}, "required": ["file"]}},
            "application/json": {"schema": inline_schema(IMPORT_REQUEST.json_schema())},
        },
    }
}
CATALOG_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The catalog of an upload: true import, as POST /imports takes a file.",
        "content": {key: CATALOG_BODY["requestBody"]["content"][key]  # type: ignore[index]
                    for key in ("text/csv", "application/x-ndjson", "application/gzip", "multipart/form-data")},
    }
}  # fmt: skip
KEPT_CACHE = "private, max-age=31536000, immutable"  # a kept picture's name is its content
# A kept picture is served from this API's own origin: never sniffed as anything but its image
# type, and never able to run or load anything, whatever bytes it holds.
KEPT_HEADERS = {"Cache-Control": KEPT_CACHE, "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox"}  # fmt: skip
IMAGE_RESPONSE: Any = {"description": "The picture.", "content": {"image/*": _BINARY}}


def build_resolver(
    service: DupcheckService, *, max_body_bytes: int, imports: ImportService | None = None,
    images: KeptImages | None = None,
) -> DupcheckResolver:  # fmt: skip
    """The API's routes over `service`; `imports` and `images` add import jobs and kept pictures
    (without them those routes answer 503)."""
    app = DupcheckResolver()
    app.configure_openapi(
        title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION,
        security_schemes={"apiKey": APIKey(name=API_KEY_HEADER, in_=APIKeyIn.header)},  # type: ignore[call-arg]
        security=[{"apiKey": []}],
    )  # fmt: skip
    app.enable_swagger(path="/docs")

    @app.get(
        "/find_similar", summary="Find the catalog images most like the image at a URL",
        description="Downloads the image (http/https; private and metadata addresses refused), hashes it "
        "and returns the closest catalog images, best first, each with a verdict.",
        responses=_responses(200, FindResponse, "The closest catalog images, best first.",
                             400, 403, 413, 415, 422, 502, 503, 504),
        tags=["find"],
    )  # fmt: skip
    def find_similar_by_url(
        image_url: ImageUrlParam,
        top: TopParam = None,
        max_distance: MaxDistanceParam = None,
    ) -> FindResponse:
        return FindResponse.of(service.find_similar(image_url, top, max_distance))

    @app.post(
        "/find_similar", summary="Find the catalog images most like an uploaded image",
        description="The same search for an image sent in the request.",
        responses=_responses(200, FindResponse, "The closest catalog images, best first.",
                             400, 403, 413, 415, 422, 503),
        tags=["find"], openapi_extensions=UPLOAD_BODY,
    )  # fmt: skip
    def find_similar_by_upload(top: TopParam = None, max_distance: MaxDistanceParam = None) -> FindResponse:
        return FindResponse.of(service.find_similar_bytes(_uploaded(app, max_body_bytes), top, max_distance))

    @app.post(
        "/items", status_code=201, summary="Register (or replace) a catalog image",
        description="Downloads and hashes the image, then stores the record under entity_id (an upsert).",
        responses=_responses(201, ItemOut, "The stored record.", 400, 403, 413, 415, 422, 502, 503, 504),
        tags=["items"],
    )  # fmt: skip
    def register_item(item: NewItem) -> ItemOut:
        return ItemOut.of(service.register(item.entity_id, item.sku, item.image_url))

    @app.put(
        "/items/<entity_id>", status_code=201, summary="Register (or replace) a catalog image from an upload",
        description="Hashes the uploaded image and stores the record under entity_id (an upsert). `image_url` is "
        "where the catalog publishes the picture (the web app's thumbnail), kept and never fetched; without it "
        "the service keeps the picture and the record's image_url is where the API serves it (/images/...).",
        responses=_responses(201, ItemOut, "The stored record.", 400, 403, 404, 413, 415, 422, 503),
        tags=["items"], openapi_extensions=UPLOAD_BODY,
    )  # fmt: skip
    def upload_item(entity_id: NewEntityIdParam, sku: SkuParam = None, image_url: PublishedUrlParam = None) -> ItemOut:
        data = _uploaded(app, max_body_bytes)
        entry = service.entry_for(entity_id=entity_id, sku=sku or "", image_url=image_url or "", data=data)
        if not image_url and images is not None:  # no address of its own: the service keeps the picture
            kept_at = _keep(images, data, public_base(app))
            entry = dataclasses.replace(entry, record=dataclasses.replace(entry.record, image_url=kept_at))
        service.save(entry)
        return ItemOut.of(entry.record)

    @app.get(
        "/items", summary="A page of the catalog, optionally searched",
        description="Records in the store's order (locally by entity_id; on AWS the table's own order), "
        "`limit` at a time; pass `next_cursor` back as `cursor` for the next page.",
        responses=_responses(200, ItemPage, "A page of records.", 400, 403, 503), tags=["items"],
    )  # fmt: skip
    def list_items(limit: LimitParam = None, cursor: CursorParam = None, q: SearchParam = None) -> ItemPage:
        records, next_cursor = service.list_items(limit, cursor, q)
        return ItemPage(items=[ItemOut.of(r) for r in records], next_cursor=next_cursor)

    @app.get(
        "/items/<entity_id>", summary="Read one catalog record",
        responses=_responses(200, ItemOut, "The record.", 400, 403, 404, 503), tags=["items"],
    )  # fmt: skip
    def get_item(entity_id: EntityIdParam, include: IncludeParam = None) -> ItemOut:
        return ItemOut.of(service.get(entity_id), with_features=include == "features")

    @app.delete(
        "/items/<entity_id>", status_code=204, summary="Remove one catalog record",
        description="204 when it was removed; 404 when there was nothing to remove.",
        responses=_responses(204, None, "Removed.", 400, 403, 404, 503), tags=["items"],
    )  # fmt: skip
    def delete_item(entity_id: EntityIdParam) -> Response[None]:
        service.remove(entity_id)
        return Response(status_code=204, content_type=None, body=None)

    _import_routes(app, imports)
    _image_routes(app, images, max_body_bytes, service.max_pixels)

    @app.get(
        "/duplicates", summary="The catalog-wide duplicate report",
        description="The newest report of `python -m dupcheck duplicates`: groups of records that hold the "
        "same picture. 404 until one is published.",
        responses=_responses(200, DuplicateReport, "The newest report.", 403, 404, 503), tags=["duplicates"],
    )  # fmt: skip
    def duplicates() -> DuplicateReport:
        return DuplicateReport.model_validate(service.duplicate_report())

    @app.get(
        "/health", summary="Status: the pipeline, record and index counts",
        responses=_responses(200, Health, "The service answers.", 503), tags=["status"], openapi_extensions=OPEN,
    )  # fmt: skip
    def health() -> Health:
        return Health.model_validate(service.health())

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[dict]:
        return _json(200, json.loads(openapi_document(app)))

    # The web app (api/web.py): open like /docs, it shows nothing until its calls bring the key.
    @app.get("/", include_in_schema=False)
    def web_page() -> Response[str]:
        event = app.current_event
        requested = (event.raw_event.get("requestContext") or {}).get("path") or event.path  # with the stage
        return Response(200, web.files()[web.PAGE][0], web.page(requested), headers=web.HEADERS)

    @app.get(f"{web.WEB_PREFIX}/<name>", include_in_schema=False)
    def web_file(name: str) -> Response[str]:
        found = web.asset(name)
        if found is None:
            raise NotFound(f"the web app has no file {name!r}")
        return Response(200, found[0], found[1], headers=web.HEADERS)

    @app.exception_handler(DupcheckError)
    def domain_error(exc: DupcheckError) -> Response[dict]:
        retry_after = getattr(exc, "retry_after_s", None)  # ServerBusy: when to come back
        return _json(exc.status, exc.to_body(), {"Retry-After": str(retry_after)} if retry_after else None)

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_body_type(_exc: RequestUnsupportedContentType) -> Response[dict]:
        return _json(415, error_body("unsupported_media_type", "this route takes a JSON body"))

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[dict]:
        # Powertools' own status would be 422, which this API keeps for images it cannot decode.
        return _json(400, error_body("invalid_request", _describe_validation(exc)))

    @app.not_found
    def not_found(_exc: NotFoundError) -> Response[dict]:
        event = app.current_event
        allowed = app.allowed_methods(event.path)
        if allowed:
            message = f"{event.http_method} is not allowed on {event.path}; allowed: {', '.join(allowed)}"
            return _json(405, error_body("method_not_allowed", message), {"Allow": ", ".join(allowed)})
        return _json(404, error_body("not_found", f"no route for {event.http_method} {event.path}"))

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[dict]:
        logger.exception("unhandled error", exc_info=exc)
        return _json(500, error_body("internal_error", "internal error; it has been logged"))

    return app


def _import_routes(app: DupcheckResolver, imports: ImportService | None) -> None:
    def service() -> ImportService:
        if imports is None:
            raise StoreUnavailable("catalog imports are not set up on this server")
        return imports

    def accepted(job: ImportJob, upload: UploadTarget | None = None) -> Response[dict]:
        out = ImportOut.of(job, public_base(app), upload)
        return _json(202, out.model_dump(mode="json", exclude_none=False), {"Location": out.status_url})

    @app.post(
        "/imports", status_code=202, summary="Import a catalog: a job that downloads and hashes every row",
        description="Answers at once with the job (`status_url` to follow it); the rows are imported in the "
        "background, each stored, skipped (already stored unchanged) or failed with its reason.",
        responses=_responses(202, ImportOut, "The job, queued (or waiting for its upload).", 400, 403, 413, 422, 503),
        tags=["imports"], openapi_extensions=CATALOG_BODY,
    )  # fmt: skip
    def create_import(
        image_base_url: ImageBaseUrlParam = None, id_column: IdColumnParam = None,
        sku_column: SkuColumnParam = None, url_column: UrlColumnParam = None,
    ) -> Response[dict]:  # fmt: skip
        jobs = service()
        options = ImportOptions(Columns(id_column or "entity_id", sku_column or "sku", url_column), image_base_url)
        event = app.current_event
        content_type = event.headers.get("content-type") or ""
        body = _raw_body(event.body, bool(event.is_base64_encoded))
        if content_type.split(";")[0].strip().lower() != "application/json":
            return accepted(jobs.submit_catalog(uploaded_catalog(body, content_type, jobs.max_catalog_bytes), options))
        request = _import_request(body)
        if isinstance(request, CatalogUrlImport):
            return accepted(jobs.submit_url(request.catalog_url, options))
        if isinstance(request, ItemsImport):
            return accepted(jobs.submit_items([item.model_dump() for item in request.items], options))
        job = jobs.submit_for_upload(options)
        return accepted(job, jobs.upload_target(job) or _own_upload(job, public_base(app), jobs.max_catalog_bytes))

    @app.put(
        "/imports/<job_id>/catalog", status_code=202, summary="Upload the catalog of an upload: true import",
        description="For an import created with upload: true where storage takes no upload of its own (the "
        "local server); on AWS the answer's upload form goes straight to S3.",
        responses=_responses(202, ImportOut, "The job, queued.", 400, 403, 404, 409, 413, 422, 503),
        tags=["imports"], openapi_extensions=CATALOG_UPLOAD_BODY,
    )  # fmt: skip
    def upload_catalog(job_id: JobIdParam) -> Response[dict]:
        jobs = service()
        event = app.current_event
        data = uploaded_catalog(_raw_body(event.body, bool(event.is_base64_encoded)),
                                event.headers.get("content-type") or "", jobs.max_catalog_bytes)  # fmt: skip
        return accepted(jobs.receive_catalog(job_id, data))

    @app.get(
        "/imports", summary="Recent import jobs, newest first",
        responses=_responses(200, ImportPage, "A page of jobs.", 400, 403, 503), tags=["imports"],
    )  # fmt: skip
    def list_imports(limit: LimitParam = None, cursor: JobsCursorParam = None) -> ImportPage:
        after = tuple(cursor.split("~")) if cursor else None
        found, position = service().recent(20 if limit is None else limit, after)  # type: ignore[arg-type]
        base = public_base(app)
        return ImportPage(imports=[ImportOut.of(job, base) for job in found],
                          next_cursor="~".join(position) if position else None)  # fmt: skip

    @app.get(
        "/imports/<job_id>", summary="An import job: status, counts, rate",
        responses=_responses(200, ImportOut, "The job.", 400, 403, 404, 503), tags=["imports"],
    )  # fmt: skip
    def get_import(job_id: JobIdParam) -> ImportOut:
        return ImportOut.of(service().get(job_id), public_base(app))

    @app.get(
        "/imports/<job_id>/failures", summary="The failed rows of an import, with their reasons",
        description="In catalog order; the codes are the backfill's failures file's (docs/backfill.md).",
        responses=_responses(200, FailurePage, "A page of failed rows.", 400, 403, 404, 503), tags=["imports"],
    )  # fmt: skip
    def import_failures(job_id: JobIdParam, limit: FailuresLimitParam = None, cursor: RowCursorParam = None
                        ) -> FailurePage:  # fmt: skip
        found, last = service().failures(job_id, limit, int(cursor) if cursor else 0)
        return FailurePage(failures=[FailureOut.of(f) for f in found],
                           next_cursor=str(last) if last is not None else None)  # fmt: skip

    @app.delete(
        "/imports/<job_id>", summary="Cancel an import",
        description="Rows not yet started are not imported; rows already stored stay stored. 409 when the job "
        "has already finished.",
        responses=_responses(200, ImportOut, "The job, cancelled.", 400, 403, 404, 409, 503), tags=["imports"],
    )  # fmt: skip
    def cancel_import(job_id: JobIdParam) -> ImportOut:
        return ImportOut.of(service().cancel(job_id), public_base(app))


def _image_routes(app: DupcheckResolver, images: KeptImages | None, max_body_bytes: int, max_pixels: int) -> None:
    def kept() -> KeptImages:
        if images is None:
            raise StoreUnavailable("this server keeps no pictures")
        return images

    @app.post(
        "/images", status_code=201, summary="Keep a picture that has no address of its own",
        description="The service keeps the picture and answers the address it serves it at (with the key): an "
        "image_url for POST /items or an import's rows. The same picture is kept once, and only if it decodes as "
        "a picture; it is served with nosniff and a Content-Security-Policy that lets it run nothing.",
        responses=_responses(201, KeptImageOut, "The kept picture's address.", 400, 403, 413, 415, 422, 503),
        tags=["items"], openapi_extensions=UPLOAD_BODY,
    )  # fmt: skip
    def keep_image() -> Response[dict]:
        data = _uploaded(app, max_body_bytes)
        decode_image(data, max_pixels=max_pixels)  # kept only if it is a picture: its magic bytes are not enough
        url = _keep(kept(), data, public_base(app))
        return _json(201, KeptImageOut(name=url.rsplit("/", 1)[1], image_url=url).model_dump())

    @app.get(
        f"/{IMAGES_PATH}/<name>", summary="A kept picture",
        responses={**_responses(200, None, "", 400, 403, 404, 503), 200: IMAGE_RESPONSE}, tags=["items"],
    )  # fmt: skip
    # No return annotation: Powertools would validate the bytes as a JSON string (and fail).
    def kept_image(name: ImageNameParam):  # type: ignore[no-untyped-def]  # noqa: ANN202
        data = kept().get(name)
        if data is None:
            raise NotFound(f"no kept picture {name!r}")
        # The name is the content: the same URL never serves other bytes.
        return Response(200, content_type(name), data, headers=KEPT_HEADERS)


def _keep(images: KeptImages, data: bytes, base_url: str) -> str:
    """Keep an uploaded picture; the address the API serves it at."""
    name = image_name(data)
    images.put(name, data)
    return f"{base_url}/{IMAGES_PATH}/{name}"


def _own_upload(job: ImportJob, base_url: str, max_bytes: int) -> UploadTarget:
    """Where storage has no upload of its own, the catalog is PUT to this API."""
    expires = datetime.fromisoformat(job.created_at.replace("Z", "+00:00")) + timedelta(seconds=UPLOAD_EXPIRES_S)
    return UploadTarget(url=f"{base_url}/imports/{job.job_id}/catalog", method="PUT", fields={},
                        expires_at=expires.isoformat().replace("+00:00", "Z"), max_bytes=max_bytes)  # fmt: skip


def _import_request(body: bytes) -> Any:
    try:
        return IMPORT_REQUEST.validate_json(body)
    except ValidationError as exc:
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                raise InvalidRequest("the body is not valid JSON") from exc
        raise InvalidRequest(
            'the body must be one of {"catalog_url": ...}, {"items": [...]} (1 to 1,000) or {"upload": true}: '
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        ) from exc
    except RecursionError as exc:
        raise InvalidRequest("the body is not valid JSON") from exc


def public_base(app: DupcheckResolver) -> str:
    """This API's base URL as the caller reached it: its Host, the scheme API Gateway or a proxy
    reports, and the stage prefix when the request came through it (as the web page's <base>)."""
    event = app.current_event
    host = event.headers.get("host") or "localhost"
    scheme = (event.headers.get("x-forwarded-proto") or "http").split(",")[0].strip().lower()
    requested = (event.raw_event.get("requestContext") or {}).get("path") or event.path
    staged = requested == STAGE_PREFIX or requested.startswith(STAGE_PREFIX + "/")
    return f"{scheme if scheme in ('http', 'https') else 'http'}://{host}{STAGE_PREFIX if staged else ''}"


def openapi_document(app: DupcheckResolver) -> str:
    """The OpenAPI document, as committed in docs/openapi.json.

    Two corrections to what Powertools generates, so the document lists only what is sent: it
    documents a 422 "HTTPValidationError" on every route because its own request validation
    would send one, while this API answers validation errors with 400 and its error body
    (`invalid_request`); and it gives a 204 a JSON body, which a 204 never has.
    """
    document = json.loads(app.get_openapi_json_schema())
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
            responses.get("204", {}).pop("content", None)
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[dict]:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return "the body is not valid JSON"
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _uploaded(app: DupcheckResolver, max_body_bytes: int) -> bytes:
    """The image of an upload route's request (raw, multipart or JSON photoData)."""
    event = app.current_event
    body = _raw_body(event.body, bool(event.is_base64_encoded))
    return uploaded_image(body, event.headers.get("content-type") or "", max_body_bytes)


def _raw_body(body: str | None, is_base64: bool) -> bytes:
    if not body:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("the body is not valid base64") from exc
    return body.encode("utf-8", "surrogateescape")
