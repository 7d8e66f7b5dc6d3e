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
# Similar products are on by default where the model is installed (make venv installs it); the
# suite's duplicate-check tests run without them, as a deployment with them off does, and the
# tests of similar products turn them on (tests/unit/catalog/test_products.py,
# tests/unit/api/test_products_api.py, the web app's test).
os.environ["DUPCHECK_PRODUCTS"] = "off"

from collections.abc import Iterator
from pathlib import Path

import pytest

from dupcheck.adapters.http_fetcher import HttpImageFetcher
from dupcheck.bootstrap import build_service
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.settings import Settings
from scripts.helpers.loopback import ImageServer

# The AWS fixtures (moto, DynamoDB table and store, Lambda context) live in their own plugin.
pytest_plugins = ["support.aws"]


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer()
    yield server
    server.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-mode settings in a fresh folder; loopback allowed for the image server."""
    return Settings.from_env({}, data_dir=tmp_path / "data", allow_loopback_urls=True, products="off")


@pytest.fixture
def service(settings: Settings) -> Iterator[DupcheckService]:
    svc = build_service(settings)
    yield svc
    if isinstance(svc.parts.fetcher, HttpImageFetcher):
        svc.parts.fetcher.close()
