"""The Powertools REST resolver, with what an HTTP API owes its callers that it leaves out.

* Thread safety: Powertools keeps the event being resolved on the `BaseRouter` class, shared
  by every resolver in the process, so two threads of the local server would read each other's
  requests. Reads go through per-thread properties instead; each thread also needs its own
  resolver, because route arguments live on the instance. (Lambda resolves one event per
  process: there it changes nothing.)
* Methods: HEAD is answered as GET (the server sends no body); a method a path does not have
  is 405 with an `Allow` header, not 404; OPTIONS lists the methods.
* Paths: a trailing slash and the `/v1` stage prefix (API Gateway's) are accepted locally too.
* Bodies: a route that takes a JSON body refuses any other content type (415) before Powertools
  tries to parse it as a form, and a body that is not UTF-8 JSON (bad bytes, 100,000 levels of
  nesting, a 5,000-digit number) is a 400 like any other invalid JSON.
"""

from __future__ import annotations

import json
import re
import threading
import types
import typing
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from dupcheck.core.errors import error_body

STAGE_PREFIX = "/v1"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIST_METHODS = "OPTIONS"


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


class DupcheckResolver(APIGatewayRestResolver):
    _local = threading.local()

    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        self._paths: list[tuple[re.Pattern[str], str, bool]] = []  # (rule, method, takes a JSON body)

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

    # -- routes -------------------------------------------------------------------------------

    def route(self, rule: str, method: str | list[str] | tuple[str], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        register = super().route(rule, method, *args, **kwargs)
        methods = [method] if isinstance(method, str) else list(method)

        def record(func: Callable[..., Any]) -> Callable[..., Any]:
            hints = typing.get_type_hints(func)
            hints.pop("return", None)
            takes_json = any(_is_model(hint) for hint in hints.values())
            for m in methods:
                self._paths.append((self._compile_regex(rule), m.upper(), takes_json))
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
        if method == _LIST_METHODS and allowed:
            return _proxy_response(204, None, {"Allow": ", ".join(allowed)})
        if refusal := self._unsupported_body(event):
            return refusal
        # Powertools assigns the event to its class; this resolver reads it from the thread.
        self._local.event, self._local.context = self._to_proxy_event(event), context
        return super().resolve(event, context)

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
