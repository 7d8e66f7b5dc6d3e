"""The Powertools REST resolver, with what an HTTP API owes its callers that it leaves out.

* Thread safety: Powertools keeps the event being resolved on the `BaseRouter` class, shared
  by every resolver in the process, so two threads of the local server would read each other's
  requests. Reads go through per-thread properties instead; each thread also needs its own
  resolver, because route arguments live on the instance. (Lambda resolves one event per
  process: there it changes nothing.)
* Methods: HEAD is answered as GET (the server sends no body); a method a path does not have
  is 405 with an `Allow` header, not 404; OPTIONS lists the methods.
* Paths: a trailing slash and the `/v1` stage prefix (API Gateway's) are accepted locally too.
  A path parameter holding a character the router cannot match (`/items/cafe%CC%81`, decomposed;
  `/items/%FF`, not UTF-8) is a 400 that says why, not the 404 of a path no route has.
* Names: a query parameter a contract route does not take is a 400 `unknown_parameter` naming
  it and the closest one it takes (known_names.py), checked before Powertools' own validation so
  that `?url=` is refused as itself, not reported as `image_url` missing.
* Bodies: a route that takes a JSON body refuses any other content type (415) before Powertools
  tries to parse it as a form, and a body that is not UTF-8 JSON (bad bytes, 100,000 levels of
  nesting, a 5,000-digit number) is a 400 like any other invalid JSON.
* Streamed answers: a Lambda's answer is one string, but the local server can send a body a
  piece at a time. Where it can (`streams_answers`), a route may hand its body over as pieces
  (`stream`, a job's results CSV), which the server takes (`take_stream`) and sends after the
  answer's status and headers: a body of a GB is never held.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from dupcheck.api.known_names import unknown_names
from dupcheck.core.errors import UnknownParameter, error_body
from dupcheck.core.ids import id_problem

STAGE_PREFIX = "/v1"
BODY_BYTES = "dupcheck.body_bytes"  # the event's key of a body handed over as bytes (the local server's catalogs)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIST_METHODS = "OPTIONS"
_PARAMETER = re.compile(r"<(\w+)>")


class JsonSafeEvent(APIGatewayProxyEvent):
    """An API Gateway event whose JSON body fails only as invalid JSON (Powertools: 400)."""

    @cached_property
    def json_body(self) -> Any:
        try:
            text = self.decoded_body
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as exc:  # not UTF-8, too deep, too many digits
            raise json.JSONDecodeError(f"not a usable JSON document ({type(exc).__name__})", "", 0) from exc


class KnownQueryValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, after refusing the query parameters a contract route does
    not declare (the names its validation reads, with their aliases)."""

    def handler(self, app: Any, next_middleware: Any) -> Any:
        route = app.context["_route"]
        if route.func in app.contract_routes:
            known = {param.alias for param in route.dependant.query_params}
            given = app.current_event.resolved_query_string_parameters or {}
            if message := unknown_names(given, known):
                raise UnknownParameter(message)
        return super().handler(app, next_middleware)


class DupcheckResolver(APIGatewayRestResolver):
    _local = threading.local()

    def __init__(self, *, streams_answers: bool = False) -> None:
        super().__init__(enable_validation=True)
        self.streams_answers = streams_answers  # the server sends a body handed over to `stream` in pieces
        self._request_validation_middleware = KnownQueryValidation()
        self._paths: list[tuple[re.Pattern[str], str, bool]] = []  # (rule, method, takes a JSON body)
        # The functions of the routes in the OpenAPI document: their query names are checked. (Not
        # the page's, nor Powertools' own 404 route, which takes any query.)
        self.contract_routes: set[Callable[..., Any]] = set()
        self._any_parameter: list[re.Pattern[str]] = []  # each rule with a parameter, matching any segment

    # -- per-thread state (see module docstring) ----------------------------------------------

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

    def _to_proxy_event(self, event: dict) -> APIGatewayProxyEvent:
        return JsonSafeEvent(event)

    def stream(self, pieces: Iterator[bytes]) -> None:
        """The body of the answer being made, as pieces the server sends after its status and headers
        (only where `streams_answers`)."""
        self._local.stream = pieces

    def take_stream(self) -> Iterator[bytes] | None:
        """The pieces a route handed over for the answer just made, if any (the server sends them)."""
        pieces, self._local.stream = getattr(self._local, "stream", None), None
        return pieces

    # -- routes -------------------------------------------------------------------------------

    def route(self, rule: str, method: str | list[str] | tuple[str], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        register = super().route(rule, method, *args, **kwargs)
        methods = [method] if isinstance(method, str) else list(method)
        # include_router passes the route's arguments by position
        arguments = inspect.signature(super().route).bind(rule, method, *args, **kwargs).arguments
        in_contract = arguments.get("include_in_schema", True)

        def record(func: Callable[..., Any]) -> Callable[..., Any]:
            hints = typing.get_type_hints(func)
            hints.pop("return", None)
            takes_json = any(_is_model(hint) for hint in hints.values())
            for m in methods:
                self._paths.append((self._compile_regex(rule), m.upper(), takes_json))
            if in_contract:
                self.contract_routes.add(func)
            if _PARAMETER.search(rule):
                self._any_parameter.append(re.compile("^" + _PARAMETER.sub(r"(?P<\1>[^/]+)", rule) + "/*$"))
            return register(func)

        return record

    def allowed_methods(self, path: str) -> list[str]:
        """The methods `path` answers to (HEAD with GET), or [] for a path no route has."""
        methods = {method for rule, method, _ in self._paths if rule.match(path)}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods | {_LIST_METHODS}) if methods else []

    # -- requests -----------------------------------------------------------------------------

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        event = dict(event)
        method = str(event.get("httpMethod") or "").upper()
        path = route_path(str(event.get("path") or "/"))
        if _CONTROL.search(path):  # no route or id holds one; Powertools' `$` would match before "\n"
            return _proxy_response(404, error_body("not_found", "no route for a path with control characters"))
        event.update(path=path, httpMethod="GET" if method == "HEAD" else method)
        allowed = self.allowed_methods(path)
        if not allowed and (refusal := self._unmatchable_parameter(path)):
            return refusal
        if method == _LIST_METHODS and allowed:
            return _proxy_response(204, None, {"Allow": ", ".join(allowed)})
        if refusal := self._unsupported_body(event):
            return refusal
        # Powertools assigns the event to its class; this resolver reads it from the thread.
        self._local.event, self._local.context = self._to_proxy_event(event), context
        self._local.stream = None
        try:
            return super().resolve(event, context)
        finally:
            # The events kept (this thread's, Powertools' class's) hold this dict until the next
            # request: not a body handed over as bytes, which may be a 100 MB catalog.
            event.pop(BODY_BYTES, None)

    def _unmatchable_parameter(self, path: str) -> dict[str, Any] | None:
        """400 for a path a route would have if its parameter held only characters the router matches."""
        match = next((m for rule in self._any_parameter if (m := rule.match(path))), None)
        if match is None:
            return None
        name, value = next(iter(match.groupdict().items()))
        problem = id_problem(value) if name == "entity_id" else None
        return _proxy_response(400, error_body("invalid_request", problem or f"{name} holds a character no {name} has"))

    def _unsupported_body(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        method, path = event["httpMethod"], event["path"]
        if not any(m == method and json_body and rule.match(path) for rule, m, json_body in self._paths):
            return None
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type in ("", "application/json"):
            return None
        return _proxy_response(
            415, error_body("unsupported_media_type", "this route takes a JSON body (Content-Type: application/json)")
        )


def _is_model(hint: Any) -> bool:
    """Whether a parameter's type is a JSON body: a pydantic model, or a union of them (a body told
    apart by a discriminator)."""
    options = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    return any(isinstance(option, type) and issubclass(option, BaseModel) for option in options)


def route_path(path: str) -> str:
    """The path routes are matched on: without the stage prefix or a trailing slash."""
    if path == STAGE_PREFIX or path.startswith(STAGE_PREFIX + "/"):
        path = path[len(STAGE_PREFIX) :] or "/"
    return path.rstrip("/") or "/"


def _proxy_response(status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway proxy response built without a route (what Powertools returns, same shape)."""
    out = {"Content-Type": "application/json"} if body is not None else {}
    out.update(headers or {})
    return {
        "statusCode": status,
        "headers": {},
        "multiValueHeaders": {name: [value] for name, value in out.items()},
        "body": json.dumps(body) if body is not None else "",
        "isBase64Encoded": False,
    }
