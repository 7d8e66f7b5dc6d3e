"""HTTP API v1, written once: the Lambda handler and the local server both resolve through it.

Routes parse and validate the request, call one service method and shape the response;
every failure leaves through `_error`, as `{"error": {"code", "message"}}` with its status.
A Powertools resolver keeps the current event on itself, so build one per thread.
"""

import base64
import binascii
import json
import logging
import re
import threading
import traceback
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel, Field

from dupcheck.core.errors import DupcheckError, ImageTooLarge, InvalidRequest, error_body
from dupcheck.core.service import MAX_ID_LENGTH, MAX_TOP, MAX_URL_LENGTH, DupcheckService

logger = logging.getLogger(__name__)

API_TITLE = "dupcheck"
API_VERSION = "1.0.0"
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)$", re.S)
_UPLOAD_FIELDS = ("file", "image", "photo", "photoData")

TopParam = Annotated[int | None, Query(ge=1, le=MAX_TOP, description="How many matches (default 5).")]
MaxDistanceParam = Annotated[
    int | None, Query(ge=0, description="Drop matches farther than this Hamming distance.")
]
EntityIdParam = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


class NewItem(BaseModel):
    entity_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    sku: str = Field("", max_length=256)
    image_url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)


class ThreadSafeRestResolver(APIGatewayRestResolver):
    """A REST resolver whose current event is per thread.

    Powertools stores the event being resolved on the `BaseRouter` class, shared by every
    resolver in the process: two server threads would read each other's requests. Reads go
    through these properties instead, which the subclass finds first; each thread also needs
    its own resolver, because route arguments live in the instance's `context`.
    """

    _local = threading.local()

    # A property over a class attribute: mypy sees a different kind of member, which is the point.
    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEvent:
        return self._local.event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEvent) -> None:
        self._local.event = value

    @property
    def lambda_context(self) -> Any:  # type: ignore[override]
        return self._local.context

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._local.context = value

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        self._local.event = self._to_proxy_event(dict(event))
        self._local.context = context
        return super().resolve(event, context)


def build_resolver(service: DupcheckService, *, max_body_bytes: int) -> APIGatewayRestResolver:
    app = ThreadSafeRestResolver(enable_validation=True)
    app.enable_swagger(path="/docs", title=API_TITLE, version=API_VERSION,
                       description="Near-duplicate image detection for e-commerce catalogs.")

    @app.get("/find_similar")
    def find_similar_by_url(
        image_url: Annotated[str, Query(min_length=1, max_length=MAX_URL_LENGTH)],
        top: TopParam = None,
        max_distance: MaxDistanceParam = None,
    ) -> Response[dict]:
        return _json(200, service.find_similar(image_url, top, max_distance).to_dict())

    @app.post("/find_similar")
    def find_similar_by_upload(top: TopParam = None, max_distance: MaxDistanceParam = None) -> Response[dict]:
        data = _uploaded_image(app, max_body_bytes)
        return _json(200, service.find_similar_bytes(data, top, max_distance).to_dict())

    @app.post("/items")
    def register_item(item: NewItem) -> Response[dict]:
        record = service.register(item.entity_id, item.sku, item.image_url)
        return _json(201, record.to_dict())

    @app.get("/items/<entity_id>")
    def get_item(entity_id: EntityIdParam) -> Response[dict]:
        return _json(200, service.get(entity_id).to_dict())

    @app.delete("/items/<entity_id>")
    def delete_item(entity_id: EntityIdParam) -> Response[dict]:
        service.remove(entity_id)
        return Response(status_code=204, body={})

    @app.get("/health")
    def health() -> Response[dict]:
        return _json(200, service.health())

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[dict]:
        return _json(200, json.loads(app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION)))

    @app.exception_handler(DupcheckError)
    def domain_error(exc: DupcheckError) -> Response[dict]:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_body_type(_exc: RequestUnsupportedContentType) -> Response[dict]:
        return _error(415, "unsupported_media_type", "this route takes a JSON body (Content-Type: application/json)")

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[dict]:
        return _error(400, "invalid_request", _describe_validation(exc))

    @app.not_found
    def not_found(_exc: NotFoundError) -> Response[dict]:
        return _error(404, "not_found", f"no route for {app.current_event.http_method} {app.current_event.path}")

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[dict]:
        if _while_reading_body(exc):
            return _error(400, "invalid_request", f"the request body could not be read: {exc}")
        logger.exception("unhandled error", exc_info=exc)
        return _error(500, "internal_error", "internal error; it has been logged")

    return app


def _json(status: int, body: dict[str, Any]) -> Response[dict]:
    return Response(status_code=status, content_type="application/json", body=body)


def _error(status: int, code: str, message: str) -> Response[dict]:
    return _json(status, error_body(code, message))


def _while_reading_body(exc: BaseException) -> bool:
    """Powertools raised it while reading the body (bad UTF-8, multipart without a boundary...).

    Those are the client's mistakes, but arrive as plain ValueErrors; a ValueError from our own
    code is a bug and stays a 500. Route code is never called from `_get_body`.
    """
    return any(
        frame.name == "_get_body" and frame.filename.endswith("openapi_validation.py")
        for frame in traceback.extract_tb(exc.__traceback__)
    )


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _uploaded_image(app: APIGatewayRestResolver, max_bytes: int) -> bytes:
    """The image of a POST: raw image/* body, a multipart file, or JSON `photoData` data URL."""
    event = app.current_event
    body = _raw_body(event.body, bool(event.is_base64_encoded))
    if not body:
        raise InvalidRequest("the request has no image: send image bytes, a multipart file or JSON photoData")
    if len(body) > max_bytes * 4 // 3 + 1024:  # base64 or multipart framing around the image
        raise ImageTooLarge(f"the request body is over {max_bytes} bytes")
    content_type = (event.headers.get("content-type") or event.headers.get("Content-Type") or "").strip()
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json":
        data = _from_json(body)
    elif media_type == "multipart/form-data":
        data = _from_multipart(content_type, body)
    else:  # image/*, application/octet-stream or unlabelled: the bytes decide (sniffed later)
        data = body
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes}")
    return data


def _raw_body(body: str | None, is_base64: bool) -> bytes:
    if not body:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("the body is not valid base64") from exc
    return body.encode("utf-8", "surrogateescape")


def _from_json(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    photo = payload.get("photoData") if isinstance(payload, dict) else None
    if not isinstance(photo, str) or not photo:
        raise InvalidRequest('JSON bodies must hold "photoData": a data URL or base64 image')
    match = _DATA_URL.match(photo.strip())
    encoded = match.group("data") if match else photo
    try:
        return base64.b64decode(re.sub(r"\s+", "", encoded), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("photoData is not valid base64") from exc


def _from_multipart(content_type: str, body: bytes) -> bytes:
    if "boundary=" not in content_type:
        raise InvalidRequest("multipart body without a boundary")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InvalidRequest("malformed multipart body")
    parts = [p for p in message.iter_parts() if p.get_content_disposition() == "form-data"]
    named = {p.get_param("name", header="content-disposition"): p for p in parts}
    chosen = next((named[f] for f in _UPLOAD_FIELDS if f in named), None)
    chosen = chosen or next((p for p in parts if p.get_filename()), None)
    if chosen is None:
        raise InvalidRequest(f"multipart body has no file field (expected one of {', '.join(_UPLOAD_FIELDS)})")
    payload = chosen.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
