"""Shared fixtures: isolated settings, a loopback image server, a local service, a Lambda context.

Nothing here reaches beyond 127.0.0.1 or needs an AWS account: AWS variables are faked
before any boto3 import so a stray call fails instead of touching a real account.
"""

from __future__ import annotations

import os

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",  # else moto misses DynamoDB Streams calls
    JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="dupcheck-tests",
)
for _name in [k for k in os.environ if k.startswith("DUPCHECK_")]:
    del os.environ[_name]  # a developer's shell must not change what the tests see

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest_aws import aws_env, ddb_client, ddb_store, ddb_table, lambda_context, mock_aws_env  # noqa: F401
from dupcheck.adapters.http_fetcher import HttpImageFetcher
from dupcheck.bootstrap import build_service
from dupcheck.core.service import DupcheckService
from dupcheck.core.settings import Settings


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ImageServer:
    """A loopback HTTP server whose routes tests set; counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                server.hits[path] += 1
                route = server.routes.get(path, Route(404, b"not found"))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def add(self, path: str, body: bytes, status: int = 200, content_type: str = "image/jpeg") -> str:
        self.routes[path] = Route(status, body, {"Content-Type": content_type})
        return self.base_url + path

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer()
    yield server
    server.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-mode settings in a fresh folder; loopback allowed for the image server."""
    return Settings.from_env({}, data_dir=tmp_path / "data", allow_private_urls=True)


@pytest.fixture
def service(settings: Settings) -> Iterator[DupcheckService]:
    svc = build_service(settings)
    yield svc
    if isinstance(svc.fetcher, HttpImageFetcher):
        svc.fetcher.close()
