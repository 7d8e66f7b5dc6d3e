"""Every failure of a request becomes its status and the error body, here and nowhere else: a
`DupcheckError` its own status (core/errors.py holds the table), Powertools' validation 400 (an
unknown body field `unknown_parameter`, anything else `invalid_request`), a JSON route sent
another body 415, an unknown path 404 or, when the path has other methods, 405 with `Allow`,
and anything else a logged 500."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from dupcheck.api.exchange import json_response
from dupcheck.api.known_names import UNKNOWN
from dupcheck.api.resolver import DupcheckResolver
from dupcheck.core.errors import DupcheckError, InvalidRequest, UnknownParameter, error_body

logger = logging.getLogger(__name__)


def answer_errors(app: DupcheckResolver) -> None:
    """Register the error handlers on `app` (after its routes: `not_found` reads their methods)."""

    @app.exception_handler(DupcheckError)
    def domain_error(exc: DupcheckError) -> Response[dict]:
        retry_after = getattr(exc, "retry_after_s", None)  # ServerBusy: when to come back
        return json_response(exc.status, exc.to_body(), {"Retry-After": str(retry_after)} if retry_after else None)

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_body_type(_exc: RequestUnsupportedContentType) -> Response[dict]:
        return json_response(415, error_body("unsupported_media_type", "this route takes a JSON body"))

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[dict]:
        # Powertools' own status would be 422, which this API keeps for images it cannot decode.
        return domain_error(request_error(exc.errors()))

    @app.not_found
    def not_found(_exc: NotFoundError) -> Response[dict]:
        event = app.current_event
        allowed = app.allowed_methods(event.path)
        if allowed:
            message = f"{event.http_method} is not allowed on {event.path}; allowed: {', '.join(allowed)}"
            return json_response(405, error_body("method_not_allowed", message), {"Allow": ", ".join(allowed)})
        return json_response(404, error_body("not_found", f"no route for {event.http_method} {event.path}"))

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[dict]:
        logger.exception("unhandled error", exc_info=exc)
        return json_response(500, error_body("internal_error", "internal error; it has been logged"))


def request_error(errors: Sequence[Any], prefix: str = "") -> InvalidRequest:
    """The 400 for pydantic's `errors` of a request: an unknown body field first (its own code:
    what else is wrong may be the same typo), else every problem, each with where it is."""
    unknown = [err for err in errors if err.get("type") == UNKNOWN]
    if any(err.get("type") == "json_invalid" for err in errors):
        return InvalidRequest("the body is not valid JSON")
    if unknown:
        return UnknownParameter("; ".join(_located(err, "") for err in unknown))
    return InvalidRequest(prefix + ("; ".join(_located(err, "request") for err in errors) or "invalid request"))


def _located(err: Any, nowhere: str) -> str:
    """The message with where it is ("items.0: unknown field 'url'..."); `nowhere`: what to say when
    it is the request itself. A union member's name (a class: upper case) is not a place."""
    loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path") and not str(p)[:1].isupper()]
    where = ".".join(loc) or nowhere
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))
