"""The API contract: the committed OpenAPI document is what the server serves, and schemathesis,
run against the local server on 127.0.0.1, finds no failure of any of its checks.

The server under test fetches nothing: its fetcher answers every image URL with one catalog
picture, so generated URLs never leave this process (and a valid URL finds a duplicate); an
import's catalog_url gets the same picture, which is no catalog (the job fails, offline).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
from dupcheck_tools.local.server import LocalServer
from dupcheck_tools.samples import encode, product_image
from scripts.openapi import DOCUMENT

ROOT = Path(__file__).parents[2]
API_KEY = "contract-test-key"


class AnyUrlFetcher:
    """Every URL serves the same picture: nothing is fetched, every URL is an image."""

    def __init__(self, image: bytes) -> None:
        self.image = image

    def fetch(self, url: str) -> bytes:
        return self.image


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    image = encode(product_image(11))
    settings = Settings.from_env({}, data_dir=tmp_path / "data", port=0, api_key=SecretStr(API_KEY))
    service = build_service(settings, fetcher=AnyUrlFetcher(image))
    service.registrar.register_bytes(entity_id="A1", sku="MH01", image_url="https://shop.test/a1.jpg", data=image)
    report = settings.data_dir / "duplicates" / "duplicates.json"  # so GET /duplicates has a 200 to check
    report.parent.mkdir(parents=True)
    report.write_text(
        json.dumps(
            {
                "pipeline": service.parts.pipeline.algo,
                "records": 2,
                "elapsed_s": 0.1,
                "groups": [
                    {
                        "items": ["A1", "A2"],
                        "pairs": [{"a": "A1", "b": "A2", "verdict": "duplicate", "match_percent": 98.4}],
                    }
                ],
            }
        )
    )
    srv = LocalServer(service, settings, catalog_fetcher=AnyUrlFetcher(image))
    srv.start_in_thread()
    yield srv
    srv.shutdown()


def test_the_committed_document_is_what_the_server_serves(server: LocalServer) -> None:
    with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=10) as response:
        served = json.loads(response.read())
    assert served == json.loads(DOCUMENT.read_text()), "docs/openapi.json is stale: run `make openapi`"


def test_the_document_says_what_the_api_answers() -> None:
    document = json.loads(DOCUMENT.read_text())
    operations = {(path, method): op for path, ops in document["paths"].items() for method, op in ops.items()}
    assert set(operations) == {
        ("/find_similar", "get"),
        ("/find_similar", "post"),
        ("/items", "post"),
        ("/items", "get"),
        ("/items/{entity_id}", "get"),
        ("/items/{entity_id}", "put"),
        ("/items/{entity_id}", "delete"),
        ("/duplicates", "get"),
        ("/duplicates/scans", "post"),
        ("/duplicates/scans", "get"),
        ("/duplicates/scans/{scan_id}", "get"),
        ("/duplicates/decisions", "post"),
        ("/duplicates/decisions", "get"),
        ("/duplicates/decisions.csv", "get"),
        ("/duplicates/decisions/{decision_id}", "get"),
        ("/duplicates/decisions/{decision_id}/undo", "post"),
        ("/duplicates/scans/{scan_id}", "delete"),
        ("/health", "get"),
        ("/imports", "post"),
        ("/imports", "get"),
        ("/imports/{job_id}", "get"),
        ("/imports/{job_id}", "delete"),
        ("/imports/{job_id}/failures", "get"),
        ("/imports/{job_id}/results", "get"),
        ("/imports/{job_id}/catalog", "put"),
        ("/images", "post"),
        ("/images/{name}", "get"),
        ("/images/{name}", "delete"),
        ("/similar_products", "get"),
        ("/similar_products", "post"),
    }
    imports = operations[("/imports", "post")]
    assert set(imports["responses"]) == {"202", "400", "403", "413", "422", "500", "503"}
    assert set(imports["requestBody"]["content"]) == {
        "text/csv",
        "application/x-ndjson",
        "application/gzip",
        "multipart/form-data",
        "application/json",
    }
    assert len(imports["requestBody"]["content"]["application/json"]["schema"]["anyOf"]) == 3  # URL, items, upload
    assert set(operations[("/imports/{job_id}", "delete")]["responses"]) >= {"200", "404", "409"}
    assert set(operations[("/images/{name}", "get")]["responses"]["200"]["content"]) == {"image/*"}
    assert set(operations[("/images/{name}", "delete")]["responses"]) >= {"204", "404", "409"}
    assert "/" not in document["paths"] and not any(p.startswith("/web") for p in document["paths"])  # the app
    assert set(operations[("/items", "get")]["responses"]) == {"200", "400", "403", "500", "503"}
    assert set(operations[("/duplicates", "get")]["responses"]) == {"200", "400", "403", "404", "500", "503"}
    assert set(operations[("/duplicates/scans", "post")]["responses"]) == {"202", "400", "403", "409", "500", "503"}
    # Every route refuses a query parameter it does not take, and every body a field it does not have.
    assert all("400" in op["responses"] for op in operations.values())
    assert "unknown_parameter" in operations[("/health", "get")]["responses"]["400"]["description"]
    photo = operations[("/find_similar", "post")]["requestBody"]["content"]["application/json"]["schema"]
    assert document["components"]["schemas"]["NewItem"]["additionalProperties"] is False
    assert photo["additionalProperties"] is False
    import_body = imports["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert all(body["additionalProperties"] is False for body in import_body)
    assert set(operations[("/duplicates/decisions", "post")]["responses"]) == {"201", "400", "403", "404", "409",
                                                                                "422", "500", "503"}  # fmt: skip
    assert set(operations[("/duplicates/decisions/{decision_id}/undo", "post")]["responses"]) >= {"200", "404", "409"}
    assert set(operations[("/duplicates/decisions.csv", "get")]["responses"]["200"]["content"]) == {"text/csv"}
    assert set(operations[("/duplicates/scans/{scan_id}", "delete")]["responses"]) >= {"200", "404", "409"}
    upload = operations[("/find_similar", "post")]["requestBody"]
    assert operations[("/items/{entity_id}", "put")]["requestBody"] == upload
    assert operations[("/similar_products", "post")]["requestBody"] == upload
    assert set(operations[("/similar_products", "get")]["responses"]) == {
        "200", "400", "403", "413", "415", "422", "500", "502", "503", "504"}  # fmt: skip
    assert operations[("/items", "post")]["responses"].keys() >= {"201", "400", "415", "502"}
    assert "200" not in operations[("/items", "post")]["responses"]
    assert {"409"} <= operations[("/items", "post")]["responses"].keys() & operations[("/items/{entity_id}", "put")][
        "responses"].keys()  # on_duplicate=reject: duplicate_image  # fmt: skip
    results = operations[("/imports/{job_id}/results", "get")]["responses"]["200"]["content"]
    assert set(results) == {"application/json", "text/csv"}
    assert set(operations[("/items/{entity_id}", "delete")]["responses"]) >= {"204", "404"}
    assert "HTTPValidationError" not in json.dumps(document)  # validation errors are a 400, not Powertools' 422
    upload = operations[("/find_similar", "post")]["requestBody"]["content"]
    assert set(upload) == {"image/*", "application/octet-stream", "multipart/form-data", "application/json"}
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    assert operations[("/health", "get")]["security"] == [] and document["security"] == [{"apiKey": []}]
    assert all(op.get("summary") for op in operations.values())


@pytest.mark.slow
def test_schemathesis_finds_no_failure(server: LocalServer, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json", "--url", server.url,
        "--max-examples", "12", "--seed", "20261122", "--header", f"x-api-key: {API_KEY}",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    # Every check runs (schemathesis' default) but those schemathesis.toml turns off for an operation
    # (`--checks all` would turn them back on).
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Test cases:" in result.stdout and "failure" not in result.stdout.rsplit("Test cases:", 1)[1]
