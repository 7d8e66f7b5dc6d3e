"""End to end: the real local server over sockets, a loopback image server, the real fetcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from dupcheck.core.service import DupcheckService
from dupcheck.core.settings import Settings
from dupcheck_tools.local.server import LocalServer
from dupcheck_tools.samples import encode, product_image

ROOT = Path(__file__).parents[2]


def request(url: str, method: str = "GET", body: bytes | None = None,
            content_type: str | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture
def server(service: DupcheckService, settings: Settings) -> Iterator[LocalServer]:
    srv = LocalServer(service, host="127.0.0.1", port=0, max_body_bytes=settings.max_image_bytes)
    srv.start_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_register_find_remove_over_http(server: LocalServer, image_server) -> None:  # noqa: ANN001
    for i in range(6):
        url = image_server.add(f"/catalog/{i}.jpg", encode(product_image(300 + i)))
        item = json.dumps({"entity_id": f"P{i}", "sku": f"SKU-{i}", "image_url": url}).encode()
        status, created = request(f"{server.url}/items", "POST", item, "application/json")
        assert status == 201, created
    copy_url = image_server.add("/query/copy.jpg", encode(product_image(302).resize((260, 260)), "JPEG", quality=55))
    status, body = request(f"{server.url}/find_similar?image_url={quote(copy_url)}&top=3")
    assert status == 200 and body["is_duplicate"] and body["matches"][0]["entity_id"] == "P2"

    status, _ = request(f"{server.url}/items/P2", "DELETE")
    assert status == 204
    status, body = request(f"{server.url}/find_similar?image_url={quote(copy_url)}&top=3")
    assert status == 200 and not body["is_duplicate"]
    assert "P2" not in [m["entity_id"] for m in body["matches"]]

    status, body = request(f"{server.url}/find_similar?top=1", "POST", encode(product_image(304)), "image/jpeg")
    assert status == 200 and body["matches"][0]["entity_id"] == "P4"


def test_error_statuses_over_http(server: LocalServer, image_server, tmp_path: Path) -> None:  # noqa: ANN001
    image_server.add("/text", b"plain text, not an image", content_type="image/jpeg")
    image_server.add("/gone", b"", status=404)
    cases = {
        f"{server.url}/find_similar?image_url={quote(image_server.base_url + '/text')}": (415, "unsupported_media_type"),  # noqa: E501
        f"{server.url}/find_similar?image_url={quote(image_server.base_url + '/gone')}": (502, "upstream_error"),
        f"{server.url}/find_similar?image_url={quote('http://169.254.169.254/latest/')}": (403, "url_not_allowed"),
        f"{server.url}/find_similar?image_url={quote('file:///etc/passwd')}": (403, "url_not_allowed"),
        f"{server.url}/find_similar?image_url=x&top=500": (400, "invalid_request"),
        f"{server.url}/items/missing": (404, "not_found"),
    }
    for url, expected in cases.items():
        status, body = request(url)
        assert (status, body["error"]["code"]) == expected, url


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW"])
def test_methods_http_server_does_not_know_get_a_json_405(server: LocalServer, method: str) -> None:
    status, body = request(f"{server.url}/health", method)
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


def test_oversized_upload_is_refused_without_reading_it(service: DupcheckService) -> None:
    srv = LocalServer(service, host="127.0.0.1", port=0, max_body_bytes=10_000)
    srv.start_in_thread()
    try:
        status, body = request(f"{srv.url}/find_similar", "POST", b"\xff\xd8\xff" + b"0" * 100_000, "image/jpeg")
        assert status == 413 and body["error"]["code"] == "image_too_large"
        status, _ = request(f"{srv.url}/health")  # and the server is still serving
        assert status == 200
    finally:
        srv.shutdown()
        srv.server_close()


def test_concurrent_requests_are_all_answered(server: LocalServer, image_server) -> None:  # noqa: ANN001
    for i in range(4):
        url = image_server.add(f"/c/{i}.jpg", encode(product_image(400 + i)))
        request(f"{server.url}/items", "POST", json.dumps({"entity_id": f"C{i}", "image_url": url}).encode(),
                "application/json")

    def query(i: int) -> tuple[int, str]:
        url = quote(f"{image_server.base_url}/c/{i % 4}.jpg")
        status, body = request(f"{server.url}/find_similar?image_url={url}&top=1")
        return status, body["matches"][0]["entity_id"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(query, range(48)))
    assert results == [(200, f"C{i % 4}") for i in range(48)]


@pytest.mark.slow
def test_make_run_demo_serves_and_its_curls_work(tmp_path: Path) -> None:
    """What `make run` starts: the demo command, on a free port, answering its printed queries."""
    env = {**os.environ, "DUPCHECK_DATA_DIR": str(tmp_path / "data"), "DUPCHECK_PORT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "dupcheck", "demo"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            lines.append(line)
            if line.startswith("API docs:") or proc.poll() is not None:
                break
        curls = [ln.strip() for ln in lines if ln.strip().startswith("curl")]
        assert len(curls) == 3, "".join(lines)
        dup_url = curls[0].split("'")[1]
        distinct_url = curls[1].split("'")[1]
        status, dup = request(dup_url)
        assert status == 200 and dup["is_duplicate"] and dup["matches"][0]["entity_id"] == "demo-03"
        status, distinct = request(distinct_url)
        assert status == 200 and not distinct["is_duplicate"]
        upload = curls[2].split("@")[1].split(" ")[0]
        post_url = curls[2].rsplit("'", 2)[1]
        status, posted = request(post_url, "POST", Path(upload).read_bytes(), "image/jpeg")
        assert status == 200 and posted["matches"][0]["entity_id"] == "demo-03"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
