#!/usr/bin/env python3
"""Smoke test of a deployed dupcheck stack, end to end, through its public API.

Why: unit tests run against moto and stubs; only a real deployment proves that API Gateway,
the API key, both Lambdas, the DynamoDB stream, OpenSearch (k-NN mapping, SigV4, IAM) and the
image fetcher work together. It checks the contract API Gateway must keep (the open routes, the
key, JSON errors, the function answering every path and method, the web app's page and files
served without a key as this checkout has them), registers one image, waits
until stream sync has indexed it (find_similar reports it as a duplicate of itself, by URL,
with the old prototype's trailing slash, and as an upload) and the product sync has embedded it
(similar_products finds it first), deletes it, and waits until both have forgotten it; then
imports a one-row catalog through POST /imports (on AWS: the catalog in S3, its event,
the dispatcher, the rows queue and the worker) and waits for the job to be done. Given the
thumbnail bucket (the `ThumbnailBucketName` output, read with the operator's own AWS
credentials), it also checks that registering kept the item's thumbnail there, that deleting
removed it, and that the import kept its row's: the look-alike check's grants (docs/deploy.md).

    python scripts/smoke_test.py --api-url https://abc123.execute-api.us-east-1.amazonaws.com/v1 \
        --api-key "$API_KEY" --image-url URL [--timeout 120] [--thumbnail-bucket NAME]

`--image-url` is required: a JPEG/PNG of your own catalog that the deployed fetcher may reach
(a host `dupcheck:allowedHosts` admits, within the size limits). The deployment downloads it, so
the smoke test never picks a third party's picture for you. The test item ids are `smoke-<random>` (and
`...-import`) and are deleted at the end, also when a step fails (unless --keep).

Exit status: 0 when every step passed, 1 otherwise; each step prints its time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from dupcheck.adapters.s3_thumbnails import thumbnail_key

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
WEB = Path(__file__).resolve().parents[1] / "lambdas" / "dupcheck" / "web"
# Stream sync normally lands within seconds; 120 s covers a cold start of both Lambdas, the
# stream's batching window and OpenSearch's 1 s refresh interval with a wide margin.
DEFAULT_TIMEOUT = 120.0
POLL_INTERVAL = 3.0
REQUEST_TIMEOUT = 30.0  # API Gateway's own limit is 29 s


class StepFailed(Exception):
    pass


class Api:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"x-api-key": api_key, "Accept": "application/json"})

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}{path}", timeout=REQUEST_TIMEOUT, **kwargs)


def expect(response: requests.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise StepFailed(
            f"{response.request.method} {response.url} -> {response.status_code} (wanted {statuses}): "
            f"{response.text[:500]}"
        )
    return response.json() if response.content and "json" in response.headers.get("content-type", "") else None


def poll(what: str, check: Callable[[], bool], timeout: float, every: float = POLL_INTERVAL) -> int:
    """Call `check` until it returns True, every `every` seconds; returns the number of attempts."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        if check():
            return attempts
        if time.monotonic() >= deadline:
            raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def run(args: argparse.Namespace) -> bool:
    api = Api(args.api_url, args.api_key)
    entity_id = f"smoke-{uuid.uuid4().hex[:12]}"
    registered = False
    imported = f"{entity_id}-import"
    import_stored = False
    ok = True

    def step(name: str, fn: Callable[[], str]) -> None:
        start = time.perf_counter()
        try:
            detail = fn()
        except (StepFailed, requests.RequestException, ValueError) as exc:
            print(f"FAIL  {name:<34} {time.perf_counter() - start:7.2f}s  {exc}", flush=True)
            raise
        print(f"ok    {name:<34} {time.perf_counter() - start:7.2f}s  {detail}", flush=True)

    def health() -> str:
        body = expect(requests.get(f"{api.base}/health", timeout=REQUEST_TIMEOUT), 200)  # no key: open
        return f"status={body.get('status')} records={body.get('records')} indexed={body.get('indexed')}"

    def contract() -> str:
        served = expect(requests.get(f"{api.base}/openapi.json", timeout=REQUEST_TIMEOUT), 200)
        committed = json.loads(OPENAPI.read_text()) if OPENAPI.exists() else served
        if served != committed:
            raise StepFailed("the deployed /openapi.json differs from docs/openapi.json of this checkout")
        return f"{len(served['paths'])} paths, as committed"

    def web_app() -> str:
        page = requests.get(f"{api.base}/", timeout=REQUEST_TIMEOUT)  # no key: the page is open
        expect(page, 200)
        base = urlsplit(api.base).path.rstrip("/") + "/"  # /v1/ behind API Gateway's stage
        if "text/html" not in page.headers.get("content-type", "") or f'<base href="{base}">' not in page.text:
            raise StepFailed(f"GET / is not the web app with its links under {base}: {page.text[:200]}")
        script = requests.get(f"{api.base}/web/app.js", timeout=REQUEST_TIMEOUT)
        expect(script, 200)
        if (WEB / "app.js").exists() and script.text != (WEB / "app.js").read_text():
            raise StepFailed("the deployed web/app.js differs from this checkout's")
        return f"page {len(page.content)} B, links under {base}, web/app.js as committed"

    def key_needed() -> str:
        body = expect(requests.get(f"{api.base}/items/{entity_id}", timeout=REQUEST_TIMEOUT), 403)
        if (body or {}).get("error", {}).get("code") != "forbidden":
            raise StepFailed(f"a request without the key got {body}, not the API's JSON error")
        return "403 forbidden, JSON error body"

    def methods() -> str:
        response = api.call("PUT", "/health")
        expect(response, 405)
        head = api.call("HEAD", "/health")
        expect(head, 200)
        if not response.headers.get("Allow") or head.content:
            raise StepFailed(f"405 without Allow ({response.headers}) or HEAD with a body")
        return f"PUT 405 Allow: {response.headers['Allow']}; HEAD 200 without a body"

    def register() -> str:
        nonlocal registered
        body = expect(
            api.call(
                "POST",
                "/items",
                json={"entity_id": entity_id, "sku": "SMOKE-TEST", "image_url": args.image_url},
            ),
            200,
            201,
        )
        registered = True
        return f"entity_id={entity_id} hash={body.get('hash')} algo={body.get('hash_algo')}"

    def get_item() -> str:
        body = expect(api.call("GET", f"/items/{entity_id}"), 200)
        return f"hash={body.get('hash')}"

    def thumbnail(kept: bool, item: str = entity_id) -> Callable[[], str]:
        def check() -> str:
            where = f"s3://{args.thumbnail_bucket}/{thumbnail_key(item)}"
            if thumbnail_in(args.thumbnail_bucket, item) != kept:
                raise StepFailed(f"{where} is {'missing' if kept else 'still there'}")
            return f"{where} {'kept' if kept else 'deleted'}"

        return check

    def find(present: bool) -> Callable[[], str]:
        def matches() -> list[dict[str, Any]]:
            body = expect(api.call("GET", "/find_similar", params={"image_url": args.image_url, "top": 20}), 200)
            return [m for m in body.get("matches", []) if m.get("entity_id") == entity_id]

        def check() -> bool:
            found = matches()
            if not present:
                return not found
            return bool(found) and found[0].get("verdict") == "duplicate"

        def run_poll() -> str:
            attempts = poll(f"{entity_id} to be {'found' if present else 'gone'}", check, args.timeout)
            return f"after {attempts} request(s)"

        return run_poll

    def similar_products(present: bool) -> Callable[[], str]:
        """The product sync function read the stream, fetched and embedded the picture and wrote its
        byte vector (the mapping accepted); the search function's route, model and inner-product
        scores: the registered picture comes back first, as alike as can be (docs/deploy.md)."""

        def hits() -> list[dict[str, Any]]:
            params = {"image_url": args.image_url, "top": 5}
            return expect(api.call("GET", "/similar_products", params=params), 200)["products"]

        def check() -> bool:
            found = hits()
            if not present:
                return all(p.get("entity_id") != entity_id for p in found)
            return bool(found) and found[0].get("entity_id") == entity_id and found[0].get("similarity", 0) >= 0.99

        def run_poll() -> str:
            attempts = poll(f"{entity_id}'s product vector to be {'found' if present else 'gone'}", check, args.timeout)
            return f"after {attempts} request(s)"

        return run_poll

    def old_clients_and_uploads() -> str:
        slash = expect(api.call("GET", "/find_similar/", params={"image_url": args.image_url, "top": 3}), 200)
        image = requests.get(args.image_url, timeout=REQUEST_TIMEOUT).content
        upload = expect(api.call("POST", "/find_similar", params={"top": 3}, data=image,
                                 headers={"Content-Type": "image/jpeg"}), 200)  # fmt: skip
        if slash["matches"][0]["entity_id"] != entity_id or upload["query"]["hash"] != slash["query"]["hash"]:
            raise StepFailed(f"trailing slash or upload disagree: {slash['matches'][:1]} {upload['query']}")
        return "GET /find_similar/ and an image upload find it too"

    def delete() -> str:
        nonlocal registered
        expect(api.call("DELETE", f"/items/{entity_id}"), 200, 204)
        registered = False
        return "deleted"

    def gone() -> str:
        body = expect(api.call("GET", f"/items/{entity_id}"), 404)
        return f"404 {((body or {}).get('error') or {}).get('code')}"

    def import_catalog() -> str:
        nonlocal import_stored
        catalog = f"entity_id,sku,image_url\n{imported},SMOKE-IMPORT,{args.image_url}\n".encode()
        job = expect(api.call("POST", "/imports", data=catalog, headers={"Content-Type": "text/csv"}), 202)
        import_stored = True

        def finished() -> bool:
            nonlocal job
            job = expect(api.call("GET", f"/imports/{job['job_id']}"), 200)
            if job["status"] in ("failed", "cancelled"):
                raise StepFailed(f"the import ended {job['status']}: {job.get('error')}")
            return bool(job["status"] == "done")

        attempts = poll(f"import {job['job_id']} to finish", finished, args.timeout, every=1.0)
        if (job["rows"], job["done"], job["failed"]) != (1, 1, 0):
            raise StepFailed(f"the import counted {job}")
        expect(api.call("GET", f"/items/{imported}"), 200)
        if args.thumbnail_bucket:  # the import worker's own grant on the bucket (AWS)
            thumbnail(kept=True, item=imported)()
        return f"job {job['job_id']} done after {attempts} poll(s): the row is stored"

    try:
        step("GET /health (no key)", health)
        step("GET /openapi.json is docs/openapi.json", contract)
        step("web app: / and a file (no key)", web_app)
        step("no key: JSON 403", key_needed)
        step("405 with Allow, HEAD", methods)
        step("POST /items", register)
        step("GET /items/{id}", get_item)
        if args.thumbnail_bucket:
            step("the thumbnail is in the bucket", thumbnail(kept=True))
        step("find_similar sees the duplicate", find(present=True))
        step("similar_products finds it first", similar_products(present=True))
        step("trailing slash and upload", old_clients_and_uploads)
        step("DELETE /items/{id}", delete)
        if args.thumbnail_bucket:
            step("the thumbnail is deleted", thumbnail(kept=False))
        step("find_similar no longer sees it", find(present=False))
        step("similar_products no longer finds it", similar_products(present=False))
        step("GET /items/{id} is 404", gone)
        step("POST /imports: a one-row catalog", import_catalog)
    except (StepFailed, requests.RequestException, ValueError):
        ok = False
    finally:
        for stored, item in ((registered, entity_id), (import_stored, imported)):
            if stored and not args.keep:
                try:
                    api.call("DELETE", f"/items/{item}")
                    print(f"cleanup: deleted {item}")
                except requests.RequestException as exc:
                    print(f"cleanup: could not delete {item}: {exc}")
    return ok


def thumbnail_in(bucket: str, entity_id: str) -> bool:
    """Whether the thumbnail store's bucket holds `entity_id`'s thumbnail (HeadObject)."""
    import boto3
    from botocore.exceptions import ClientError

    try:
        boto3.client("s3").head_object(Bucket=bucket, Key=thumbnail_key(entity_id))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise StepFailed(f"cannot read the bucket {bucket}: {exc}") from exc
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="End-to-end smoke test of a deployed dupcheck API.")
    parser.add_argument(
        "--api-url", required=True, help="API base URL including the stage, e.g. .../v1 (the ApiUrl output)"
    )
    parser.add_argument("--api-key", required=True, help="value of the x-api-key header")
    parser.add_argument(
        "--image-url",
        required=True,
        help="a picture of your own catalog to register, on a host the stack may fetch from",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for stream sync")
    parser.add_argument("--keep", action="store_true", help="do not delete the test item when a step fails")
    parser.add_argument(
        "--thumbnail-bucket",
        help="the ThumbnailBucketName output: also check the item's thumbnail is kept there and deleted "
        "with it (needs AWS credentials that may read the bucket)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ok = run(args)
    print(f"{'PASSED' if ok else 'FAILED'} in {time.perf_counter() - start:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
