"""`/find_similar`: the closest catalog images to an image at a URL, or to an uploaded one."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.contract import UPLOAD_BODY, responses
from dupcheck.api.exchange import uploaded
from dupcheck.api.params import AskedForParam, ImageUrlParam, MarksParam, MaxDistanceParam, TopParam
from dupcheck.api.schemas import FindResponse
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.models import Marks


def router(service: DupcheckService, *, max_body_bytes: int) -> Router:
    routes = Router()

    @routes.get(
        "/find_similar", summary="Find the catalog images most like the image at a URL",
        description="Downloads the image (http/https; private and metadata addresses refused), hashes it "
        "and returns the closest catalog images, best first, each with a verdict.",
        responses=responses(200, FindResponse, "The closest catalog images, best first.",
                            400, 403, 413, 415, 422, 502, 503, 504),
        tags=["find"],
    )  # fmt: skip
    def find_similar_by_url(
        image_url: ImageUrlParam,
        top: TopParam = None,
        max_distance: MaxDistanceParam = None,
        entity_id: AskedForParam = None,
        marks: MarksParam = None,
    ) -> FindResponse:
        return FindResponse.of(service.lookups.find_similar(image_url, top, max_distance, entity_id=entity_id,
                                                            marks=Marks.named(marks)))  # fmt: skip

    @routes.post(
        "/find_similar", summary="Find the catalog images most like an uploaded image",
        description="The same search for an image sent in the request.",
        responses=responses(200, FindResponse, "The closest catalog images, best first.",
                            400, 403, 413, 415, 422, 503),
        tags=["find"], openapi_extensions=UPLOAD_BODY,
    )  # fmt: skip
    def find_similar_by_upload(
        top: TopParam = None, max_distance: MaxDistanceParam = None, entity_id: AskedForParam = None,
        marks: MarksParam = None,
    ) -> FindResponse:  # fmt: skip
        data = uploaded(routes.current_event, max_body_bytes)
        return FindResponse.of(service.lookups.find_similar_bytes(data, top, max_distance, entity_id=entity_id,
                                                                  marks=Marks.named(marks)))  # fmt: skip

    return routes
