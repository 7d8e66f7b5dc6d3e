"""What the routes read of a request beyond their parameters (a raw body, an uploaded image, the
caller's base URL), the JSON response they build by hand (a status other than the route's), and
what the routes of a background job (an import, a duplicate scan) answer (`JobAnswers`).

A Lambda event carries a binary body as base64 text; the local server hands a catalog's body
over as the bytes themselves, beside the event (`BODY_BYTES`, resolver.py): base64 text and its decoding held
a 100 MB catalog four times over."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel

from dupcheck.api.resolver import BODY_BYTES, STAGE_PREFIX
from dupcheck.api.uploads import uploaded_image
from dupcheck.core.errors import InvalidRequest, StoreUnavailable

T = TypeVar("T")
Job = TypeVar("Job")
Out = TypeVar("Out", bound=BaseModel)


def configured(part: T | None, missing: str) -> T:
    """A part of the service a route needs (imports, kept images, scans), or 503 saying `missing`."""
    if part is None:
        raise StoreUnavailable(missing)
    return part


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[dict]:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def uploaded(event: BaseProxyEvent, max_body_bytes: int) -> bytes:
    """The image of an upload route's request (raw, multipart or JSON photoData)."""
    body = raw_body(event)
    return uploaded_image(body, event.headers.get("content-type") or "", max_body_bytes)


def raw_body(event: BaseProxyEvent) -> bytes:
    held = event.raw_event.get(BODY_BYTES)
    if isinstance(held, bytes):
        return held
    body, is_base64 = event.body, bool(event.is_base64_encoded)
    if not body:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("the body is not valid base64") from exc
    return body.encode("utf-8", "surrogateescape")


def public_base(event: BaseProxyEvent) -> str:
    """This API's base URL as the caller reached it: its Host, the scheme API Gateway or a proxy
    reports, and the stage prefix when the request came through it (as the web page's <base>)."""
    host = event.headers.get("host") or "localhost"
    scheme = (event.headers.get("x-forwarded-proto") or "http").split(",")[0].strip().lower()
    requested = (event.raw_event.get("requestContext") or {}).get("path") or event.path
    staged = requested == STAGE_PREFIX or requested.startswith(STAGE_PREFIX + "/")
    return f"{scheme if scheme in ('http', 'https') else 'http'}://{host}{STAGE_PREFIX if staged else ''}"


class JobAnswers(Generic[Job, Out]):
    """What the routes of a kind of background job (imports, duplicate scans) answer: a job as its
    model (`out(job, base_url, *more)`, which has the job's `status_url`) for the caller's base URL,
    a list of them, and 202 Accepted with the job's Location for a job just started."""

    def __init__(self, routes: Router, out: Callable[..., Out]) -> None:
        self._routes = routes
        self._out = out

    def one(self, job: Job, *more: Any) -> Out:
        return self._out(job, public_base(self._routes.current_event), *more)

    def all(self, jobs: Iterable[Job]) -> list[Out]:
        base = public_base(self._routes.current_event)
        return [self._out(job, base) for job in jobs]

    def accepted(self, job: Job, *more: Any) -> Response[dict]:
        body = self.one(job, *more).model_dump(mode="json")
        return json_response(202, body, {"Location": body["status_url"]})
