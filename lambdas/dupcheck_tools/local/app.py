"""The local server's WSGI application: the same API routes as Lambda, behind a local guard.

Each request becomes the API Gateway REST event Lambda would receive and is resolved by
`dupcheck.api` (one resolver per server thread: see api/resolver.py), so the local server and
the Lambda function cannot drift apart. What API Gateway does in front of the function on AWS
is done here by `Guard`:

* Host: a name the request may use to reach this server: an IP address, `localhost`, or one of
  `DUPCHECK_SERVER_NAMES`. Another name means a DNS-rebinding page is knocking (403).
* Cross-site writes: a POST/PUT/PATCH/DELETE that a browser marks as coming from another site
  (`Sec-Fetch-Site`, else an `Origin` that is not this server) is refused (403): a page the
  operator visits cannot change the catalog. Clients that are not browsers send neither header.
* The API key: with `DUPCHECK_API_KEY` set, every route but /health, /openapi.json, /docs, the
  web app (`/` and /web/...) and static files needs it in `x-api-key` (the header API Gateway
  checks). The page loads without the key and sends it with every API call it makes.

Static files (the demo's pictures under /demo/) are served from a folder, never outside it.

Memory: a catalog's body (up to DUPCHECK_MAX_CATALOG_BYTES, 100 MB) is read only once admitted
against the catalog budget (DUPCHECK_CATALOG_BUDGET_MB: `catalog_budget`, core/pictures/budget.py): bodies
that do not fit beside those being read wait, then are answered 503 `server_busy`. It is handed
to the API as bytes beside the event (api/exchange.py), not as base64 text. An answer a route
streams (a job's results CSV) is sent a piece at a time, never built whole.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import mimetypes
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dupcheck.api import API_KEY_HEADER, build_resolver
from dupcheck.api.resolver import BODY_BYTES, DupcheckResolver, route_path
from dupcheck.api.uploads import catalog_body_cost
from dupcheck.api.web import WEB_PREFIX
from dupcheck.core.catalog.kept_images import KeptImageLifecycle
from dupcheck.core.catalog.products import ProductSearch
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import ServerBusy, error_body
from dupcheck.core.jobs.imports import ImportService
from dupcheck.core.jobs.scans import ScanService
from dupcheck.core.pictures.budget import MB, MemoryBudget

logger = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
STATIC_PREFIX = "/demo/"
OPEN_PATHS = ("/health", "/openapi.json", "/docs", WEB_PREFIX)  # and below them; no API key (as on AWS)
OPEN_PAGE = "/"  # the web app's page: open itself, not what is below it
BODY_FRAMING_BYTES = 64 * 1024  # base64 or multipart framing around an upload
CATALOG_WAIT_S = 10.0  # how long a catalog body waits for room in the catalog budget before a 503
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SAME_SITE = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values a write may carry
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
            415: "Unsupported Media Type",
            422: "Unprocessable Content", 500: "Internal Server Error", 502: "Bad Gateway", 303: "See Other",
            503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip

# What the resolver reads of a Lambda context when running locally.
_CONTEXT = SimpleNamespace(
    function_name="dupcheck-local", memory_limit_in_mb=0, invoked_function_arn="local",
    aws_request_id="local", get_remaining_time_in_millis=lambda: 30_000,
)  # fmt: skip


class Guard:
    """What API Gateway checks on AWS, checked locally (see module docstring)."""

    def __init__(self, *, api_key: str | None, server_names: Iterable[str]) -> None:
        self.api_key = api_key
        self.server_names = {"localhost", *(n.lower().rstrip(".") for n in server_names)}

    def refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, str] | None:
        """(status, code, message) when the request must be refused, else None."""
        host = _hostname(headers.get("host", ""))
        if host is None or not (_is_ip(host) or host in self.server_names):
            return (
                403,
                "forbidden_host",
                ("this server does not answer to that Host name; list it in DUPCHECK_SERVER_NAMES"),
            )
        if method in UNSAFE_METHODS and _cross_site(headers):
            return 403, "cross_site_request", "a write from another web site is refused"
        if self.api_key and not _is_open(path):
            given = headers.get(API_KEY_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return 403, "forbidden", f"this route needs the API key in the {API_KEY_HEADER} header"
        return None


class LocalApp:
    """The WSGI application: guard, static files, then the API resolver of this thread."""

    def __init__(
        self, service: DupcheckService, *, max_body_bytes: int, guard: Guard, static_dir: Path | None = None,
        imports: ImportService | None = None, images: KeptImageLifecycle | None = None,
        scans: ScanService | None = None, products: ProductSearch | None = None,
        catalog_budget: MemoryBudget | None = None,
    ) -> None:  # fmt: skip
        """`catalog_budget`: what the catalog bodies being read at once may hold (default: the setting's
        default, 256 MB)."""
        self.service = service
        self.products = products
        self.max_body_bytes = max_body_bytes
        self.guard = guard
        self.static_dir = static_dir.resolve() if static_dir else None
        self.imports = imports
        self.images = images
        self.scans = scans
        self.catalog_budget = catalog_budget or catalog_budget_of(256 * MB)
        self._resolvers = threading.local()

    def resolver(self) -> DupcheckResolver:
        app = getattr(self._resolvers, "app", None)
        if app is None:
            app = self._resolvers.app = build_resolver(
                self.service, max_body_bytes=self.max_body_bytes, imports=self.imports, images=self.images,
                # The served contract says whether this server needs a key.
                scans=self.scans, keyed=self.guard.api_key is not None, products=self.products,
                streams_answers=True,
            )  # fmt: skip
        return app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        if method == "HEAD":  # the GET's status and headers, Content-Length included, but no body
            self(dict(environ, REQUEST_METHOD="GET"), start_response)
            return []  # (waitress sends whatever body it is given, even to HEAD)
        # WSGI hands the decoded path over as latin-1 characters of its bytes: those are UTF-8.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace") or "/"
        headers = _headers(environ)
        if refusal := self.guard.refusal(method, path, headers):
            status, code, message = refusal
            return _respond(start_response, status, json.dumps(error_body(code, message)).encode(), _JSON)
        if self.static_dir and path.startswith(STATIC_PREFIX) and method in ("GET", "HEAD"):
            return self._static(start_response, path[len(STATIC_PREFIX) :])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if oversized := self._oversized(method, path, length):
            return _respond(start_response, 413, json.dumps(oversized).encode(), _JSON)
        if not takes_catalog(method, path):
            return self._answer(environ, start_response, method, path, headers, length)
        try:
            with self.catalog_budget.admitted(catalog_body_cost(length, headers.get("content-type", ""))):
                return self._answer(environ, start_response, method, path, headers, length, as_bytes=True)
        except ServerBusy as busy:
            return _respond(start_response, busy.status, json.dumps(busy.to_body()).encode(),
                            {**_JSON, "Retry-After": str(busy.retry_after_s)})  # fmt: skip

    def _answer(self, environ: dict[str, Any], start_response: StartResponse, method: str, path: str,
                headers: dict[str, str], length: int, *, as_bytes: bool = False) -> Iterable[bytes]:  # fmt: skip
        """The API's answer; `as_bytes`: the body goes beside the event as bytes (api/exchange.py)."""
        body = environ["wsgi.input"].read(length or -1)
        resolver = self.resolver()
        try:
            result = resolver.resolve(self._event(environ, method, path, headers, body, as_bytes), _CONTEXT)
        except Exception:  # the resolver maps errors itself; this guards the process, not the API
            logger.exception("request failed outside the API")
            payload = json.dumps(error_body("internal_error", "internal error; it has been logged")).encode()
            return _respond(start_response, 500, payload, _JSON)
        del body
        out = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out.setdefault(name, ", ".join(values))
        status = int(result.get("statusCode", 500))
        if (pieces := resolver.take_stream()) is not None:
            # Sent as it is made, without a length (chunked). A failure midway raises here, and waitress
            # closes the connection: the client sees a broken answer, never a short one that looks whole.
            start_response(f"{status} {_REASONS.get(status, 'Status')}", _without_length(out))
            return pieces
        text: str = result.get("body") or ""
        data = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()
        return _respond(start_response, status, data, out)

    def _oversized(self, method: str, path: str, length: int) -> dict | None:
        """The server takes a catalog's size for the routes that take one; every other route
        keeps an image's limit, checked here before its body is read into memory."""
        if takes_catalog(method, path) and self.imports is not None:
            limit = self.imports.max_catalog_bytes + BODY_FRAMING_BYTES
        else:
            limit = self.max_body_bytes * 4 // 3 + BODY_FRAMING_BYTES
        if length <= limit:
            return None
        return error_body(too_large_code(method, path), f"the request body is {length} bytes; this route takes at "
                          f"most {limit}")  # fmt: skip

    @staticmethod
    def _event(environ: dict[str, Any], method: str, path: str, headers: dict[str, str], body: bytes,
               as_bytes: bool = False) -> dict:  # fmt: skip
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        carried: dict[str, Any]
        if as_bytes:
            carried = {"body": None, "isBase64Encoded": False, BODY_BYTES: body}
        else:
            carried = {"body": base64.b64encode(body).decode() if body else None, "isBase64Encoded": bool(body)}
        return {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "stage": "local",
                "httpMethod": method,
                "path": path,
                "resourcePath": path,
                "identity": {"sourceIp": environ.get("REMOTE_ADDR", "")},
            },  # fmt: skip
            **carried,
        }

    def _static(self, start_response: StartResponse, relative: str) -> list[bytes]:
        assert self.static_dir is not None
        target = (self.static_dir / relative).resolve()
        if not target.is_relative_to(self.static_dir) or not target.is_file():
            return _respond(start_response, 404, json.dumps(error_body("not_found", "no such file")).encode(), _JSON)
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return _respond(start_response, 200, target.read_bytes(), {"Content-Type": content_type,
                                                                    "X-Content-Type-Options": "nosniff"})  # fmt: skip


_JSON = {"Content-Type": "application/json"}


def catalog_budget_of(total_bytes: int) -> MemoryBudget:
    """The budget of the catalog bodies read at once (DUPCHECK_CATALOG_BUDGET_MB)."""
    return MemoryBudget(total_bytes=total_bytes, wait_s=CATALOG_WAIT_S, holding="reading other large catalogs")


def takes_catalog(method: str, path: str) -> bool:
    """Whether the request's body is a catalog: `POST /imports`, `PUT /imports/{id}/catalog`."""
    route = route_path(path)
    return (method == "POST" and route == "/imports") or (method == "PUT" and route.startswith("/imports/"))


def too_large_code(method: str, path: str) -> str:
    """The error code of a body over the route's limit: a catalog's, else an image's."""
    return "catalog_too_large" if takes_catalog(method, path) else "image_too_large"


def _without_length(headers: dict[str, str]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in ("content-length", "connection")]


def _respond(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    out = _without_length(headers)
    out.append(("Content-Length", str(len(body))))
    start_response(f"{status} {_REASONS.get(status, 'Status')}", out)
    return [body]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """Request headers by their lower-case names (as HTTP/2 and API Gateway's v2 events give them)."""
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers[name] = str(environ[key])
    return headers


def _hostname(host: str) -> str | None:
    """The name of a Host header (`[::1]:8000` -> `::1`), or None when it has none."""
    try:
        name = urlsplit(f"//{host.strip()}").hostname
    except ValueError:
        return None
    return name.rstrip(".") if name else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _cross_site(headers: dict[str, str]) -> bool:
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() not in _SAME_SITE
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser (curl, a shop's backend)
    return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


def _is_open(path: str) -> bool:
    path = route_path(path)
    return (path == OPEN_PAGE or path.startswith(STATIC_PREFIX)
            or any(path == p or path.startswith(p + "/") for p in OPEN_PATHS))  # fmt: skip
