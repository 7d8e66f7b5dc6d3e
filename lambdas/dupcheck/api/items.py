"""`/items`: the catalog's records: register by URL or upload, page through, read, remove."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.contract import UPLOAD_BODY, responses
from dupcheck.api.exchange import public_base, uploaded
from dupcheck.api.params import (
    CursorParam,
    EntityIdParam,
    IncludeParam,
    LimitParam,
    MarksParam,
    NewEntityIdParam,
    OnDuplicateParam,
    PublishedUrlParam,
    SearchParam,
    SkuParam,
)
from dupcheck.api.schemas import ItemOut, ItemPage, NewItem, RegisteredOut
from dupcheck.core.catalog.gate import policy_of
from dupcheck.core.catalog.kept_images import KeptImageLifecycle
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.models import Marks


def router(service: DupcheckService, images: KeptImageLifecycle | None, *, max_body_bytes: int) -> Router:
    routes = Router()

    @routes.post(
        "/items", status_code=201, summary="Register (or replace) a catalog image, checked for duplicates first",
        description="Downloads and hashes the image, checks it against the catalog (on_duplicate: warn stores it "
        "and lists its duplicates, reject answers 409 duplicate_image and stores nothing, allow skips the check), "
        "then stores the record under entity_id (an upsert).",
        responses=responses(201, RegisteredOut, "The stored record and its duplicates.", 400, 403, 409, 413, 415,
                            422, 502, 503, 504),
        tags=["items"],
    )  # fmt: skip
    def register_item(item: NewItem, on_duplicate: OnDuplicateParam = None, marks: MarksParam = None) -> RegisteredOut:
        policy = policy_of(item.on_duplicate or on_duplicate, service.parts.on_duplicate)
        return RegisteredOut.of_registration(service.registrar.register_url_checked(
            item.entity_id, item.sku, item.image_url, on_duplicate=policy, marks=Marks.named(marks)))  # fmt: skip

    @routes.put(
        "/items/<entity_id>", status_code=201, summary="Register (or replace) a catalog image from an upload",
        description="Hashes the uploaded image and stores the record under entity_id (an upsert). `image_url` is "
        "where the catalog publishes the picture (the web app's thumbnail), kept and never fetched; without it "
        "the service keeps a rendition of the picture (at most 1024 px, JPEG), hashes that, and the record's "
        "image_url is where the API serves it (/images/...) until the last record naming it goes.",
        responses=responses(201, RegisteredOut, "The stored record and its duplicates.", 400, 403, 404, 409, 413,
                            415, 422, 503),
        tags=["items"], openapi_extensions=UPLOAD_BODY,
    )  # fmt: skip
    def upload_item(
        entity_id: NewEntityIdParam, sku: SkuParam = None, image_url: PublishedUrlParam = None,
        on_duplicate: OnDuplicateParam = None, marks: MarksParam = None,
    ) -> RegisteredOut:  # fmt: skip
        policy = policy_of(on_duplicate, service.parts.on_duplicate)
        read_marks = Marks.named(marks)
        data = uploaded(routes.current_event, max_body_bytes)
        if image_url or images is None:
            return RegisteredOut.of_registration(service.registrar.register_checked(
                entity_id=entity_id, sku=sku or "", image_url=image_url or "", data=data,
                on_duplicate=policy, marks=read_marks))  # fmt: skip
        registration = service.registrar.register_kept(
            entity_id=entity_id,
            sku=sku or "",
            data=data,
            pictures=images,
            base_url=public_base(routes.current_event),
            on_duplicate=policy,
            marks=read_marks,
        )
        return RegisteredOut.of_registration(registration)

    @routes.get(
        "/items", summary="A page of the catalog, optionally searched",
        description="Records in the store's order (locally by entity_id; on AWS the table's own order), "
        "`limit` at a time; pass `next_cursor` back as `cursor` for the next page.",
        responses=responses(200, ItemPage, "A page of records.", 400, 403, 503), tags=["items"],
    )  # fmt: skip
    def list_items(limit: LimitParam = None, cursor: CursorParam = None, q: SearchParam = None) -> ItemPage:
        records, next_cursor = service.records.list_items(limit, cursor, q)
        return ItemPage(items=[ItemOut.of(r) for r in records], next_cursor=next_cursor)

    @routes.get(
        "/items/<entity_id>", summary="Read one catalog record",
        responses=responses(200, ItemOut, "The record.", 400, 403, 404, 503), tags=["items"],
    )  # fmt: skip
    def get_item(entity_id: EntityIdParam, include: IncludeParam = None) -> ItemOut:
        return ItemOut.of(service.records.get(entity_id), with_features=include == "features")

    @routes.delete(
        "/items/<entity_id>", status_code=204, summary="Remove one catalog record",
        description="204 when it was removed; 404 when there was nothing to remove.",
        responses=responses(204, None, "Removed.", 400, 403, 404, 503), tags=["items"],
    )  # fmt: skip
    def delete_item(entity_id: EntityIdParam) -> Response[None]:
        service.records.remove(entity_id)
        return Response(status_code=204, content_type=None, body=None)

    return routes
