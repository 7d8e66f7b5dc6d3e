"""`/images`: pictures the service keeps because they have no address of their own (an upload
without `image_url`, a folder chosen in the web app), served back at `/images/<name>`, deleted
with the last record that uses them or on request (core/catalog/kept_images.py)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.contract import IMAGE_RESPONSE, UPLOAD_BODY, responses
from dupcheck.api.exchange import configured, json_response, public_base, uploaded
from dupcheck.api.import_schemas import KeptImageOut
from dupcheck.api.params import ImageNameParam
from dupcheck.core.catalog.kept_images import IMAGES_PATH, UNCLAIMED_FOR_S, KeptImageLifecycle, content_type, rendition
from dupcheck.core.errors import NotFound

KEPT_CACHE = "private, max-age=31536000, immutable"  # a kept image's name is its content
# A kept image is served from this API's own origin: never sniffed as anything but its image
# type, and never able to run or load anything, whatever bytes it holds.
KEPT_HEADERS = {"Cache-Control": KEPT_CACHE, "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox"}  # fmt: skip


def router(images: KeptImageLifecycle | None, *, max_body_bytes: int, max_pixels: int) -> Router:
    routes = Router()

    def kept() -> KeptImageLifecycle:
        return configured(images, "this server keeps no pictures")

    @routes.post(
        "/images", status_code=201, summary="Keep a picture that has no address of its own",
        description="The service keeps the picture and answers the address it serves it at (with the key): an "
        "image_url for POST /items or an import's rows. What is kept is a JPEG rendition at most 1024 px on its "
        "longer side (docs/api.md, \"Kept images\"), only if the upload decodes as a picture; the same picture "
        f"is kept once. One no record names is deleted after {UNCLAIMED_FOR_S // 3600} hours; it is served with "
        "nosniff and a Content-Security-Policy that lets it run nothing.",
        responses=responses(201, KeptImageOut, "The kept image's address.", 400, 403, 413, 415, 422, 503),
        tags=["items"], openapi_extensions=UPLOAD_BODY,
    )  # fmt: skip
    def keep_image() -> Response[dict]:
        pictures = kept()
        data = rendition(uploaded(routes.current_event, max_body_bytes), max_pixels=max_pixels)
        url = pictures.keep(data, public_base(routes.current_event))
        return json_response(201, KeptImageOut(name=url.rsplit("/", 1)[1], image_url=url).model_dump())

    @routes.get(
        f"/{IMAGES_PATH}/<name>", summary="A kept image",
        responses={**responses(200, None, "", 400, 403, 404, 503), 200: IMAGE_RESPONSE}, tags=["items"],
    )  # fmt: skip
    # No return annotation: Powertools would validate the bytes as a JSON string (and fail).
    def kept_image(name: ImageNameParam):  # type: ignore[no-untyped-def]  # noqa: ANN202
        data = kept().images.get(name)
        if data is None:
            raise NotFound(f"no kept image {name!r}")
        # The name is the content: the same URL never serves other bytes.
        return Response(200, content_type(name), data, headers=KEPT_HEADERS)

    @routes.delete(
        f"/{IMAGES_PATH}/<name>", status_code=204, summary="Delete a kept image no record uses",
        description="204 when it was deleted; 409 while a record's image_url names it (delete or replace the "
        "record first: the picture then goes with it); 404 when none is kept under that name.",
        responses=responses(204, None, "Deleted.", 400, 403, 404, 409, 503), tags=["items"],
    )  # fmt: skip
    def delete_image(name: ImageNameParam) -> Response[None]:
        kept().delete(name)
        return Response(status_code=204, content_type=None, body=None)

    return routes
