"""The local HTTP server: real sockets, many threads, the same routes as Lambda.

Each request becomes an API Gateway REST proxy event and is resolved by `api.build_resolver`,
so the local server and the Lambda function cannot drift apart. Resolvers keep per-request
state, so each server thread gets its own.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dupcheck.api import build_resolver
from dupcheck.core.errors import error_body
from dupcheck.core.service import DupcheckService

logger = logging.getLogger(__name__)

STATIC_PREFIX = "/demo/"


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        service: DupcheckService,
        *,
        host: str,
        port: int,
        max_body_bytes: int,
        static_dir: Path | None = None,
    ) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.static_dir = static_dir.resolve() if static_dir else None
        self._resolvers = threading.local()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def resolver(self):  # noqa: ANN201 - APIGatewayRestResolver, one per thread
        app = getattr(self._resolvers, "app", None)
        if app is None:
            app = build_resolver(self.service, max_body_bytes=self.max_body_bytes)
            self._resolvers.app = app
        return app

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="dupcheck-server", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    server_version = "dupcheck"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.server.static_dir and self.path.startswith(STATIC_PREFIX):
            self._static()
        else:
            self._dispatch()

    do_HEAD = do_GET

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return self._send_error(400, "invalid_request", "bad Content-Length header")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._send_error(411, "length_required", "send a Content-Length instead of chunks")
        # Base64 and multipart framing make the body up to a third larger than the image.
        if length > self.server.max_body_bytes * 4 // 3 + 65536:
            self.close_connection = True
            limit = self.server.max_body_bytes
            return self._send_error(413, "image_too_large", f"the request body is over {limit} bytes")
        body = self.rfile.read(length) if length else b""
        try:
            result = self.server.resolver().resolve(self._event(body), _CONTEXT)
        except Exception:  # the resolver maps errors itself; this guards the process, not the API
            logger.exception("request failed outside the API")
            return self._send_error(500, "internal_error", "internal error; it has been logged")
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        headers = {k: v for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.setdefault(name, values[-1] if values else "")
        self._send(int(result.get("statusCode", 500)), data, headers)

    do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _dispatch

    def _event(self, body: bytes) -> dict[str, Any]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        headers = {k: v for k, v in self.headers.items()}
        path = unquote(parts.path) or "/"
        return {
            "resource": path,
            "path": path,
            "httpMethod": self.command,
            "headers": headers,
            "multiValueHeaders": {k: self.headers.get_all(k) or [] for k in headers},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "stage": "local",
                "httpMethod": self.command,
                "path": path,
                "resourcePath": path,
                "identity": {"sourceIp": self.client_address[0]},
            },
            "body": base64.b64encode(body).decode() if body else None,
            "isBase64Encoded": bool(body),
        }

    def _static(self) -> None:
        root = self.server.static_dir
        assert root is not None
        target = (root / unquote(urlsplit(self.path).path[len(STATIC_PREFIX) :])).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return self._send_error(404, "not_found", "no such demo file")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), {"Content-Type": content_type})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method) as JSON too."""
        if code == 501:  # the method has no do_* handler: not allowed on any route here
            code, message = 405, f"method {self.command} is not allowed"
        self.close_connection = True
        names = {400: "invalid_request", 405: "method_not_allowed", 414: "uri_too_long", 431: "headers_too_large"}
        self._send_error(code, names.get(code, "http_error"), message or "request refused")

    def _send_error(self, status: int, code: str, message: str) -> None:
        body = json.dumps(error_body(code, message)).encode()
        self._send(status, body, {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        logger.info("%s %s", self.address_string(), format % args)


# What the resolver reads of a Lambda context when running locally.
_CONTEXT = SimpleNamespace(
    function_name="dupcheck-local",
    memory_limit_in_mb=0,
    invoked_function_arn="local",
    aws_request_id="local",
    get_remaining_time_in_millis=lambda: 30_000,
)
