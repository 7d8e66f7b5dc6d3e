"""The local server as a client sees it: latency of /health and find_similar, and a load test.

A small catalog (generated product pictures, `index-dir`) is served by `python -m dupcheck serve`
in its own process; queries are edited copies of catalog pictures, served by a loopback image
server (GET by URL) or uploaded (POST). Every figure has its baseline in the same run:

* /health p50 and p99 over one keep-alive connection;
* find_similar end to end, p50, against the same query done in process by the same code
  (`CatalogLookups.find_similar_bytes`: fingerprint + search + judge; plus the download for
  GET by URL): the ratio is what the HTTP layer costs;
* 16 clients for `--load-seconds` (health, GET by URL and uploads, mixed): errors, throughput,
  and the server's RSS after a warm-up and at the end.

    .venv/bin/python scripts/bench/serve_bench.py [--lambdas DIR] [--catalog 200] [--load-seconds 60]

`--lambdas` measures another checkout's code (the baseline in docs/lab/benchmarks.md: the commit
before the server change, in a worktree). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psutil
from PIL import Image, ImageEnhance

from scripts.helpers.loopback import ImageServer

ROOT = Path(__file__).resolve().parents[2]

IN_PROCESS = """
import json, sys, time, statistics, tempfile, urllib.request
from pathlib import Path
from dupcheck.bootstrap import build_service
from dupcheck.core.settings import Settings
service = build_service(Settings.from_env(data_dir=Path(sys.argv[1]), allow_loopback_urls=True))
lookups = getattr(service, "lookups", service)  # a baseline older than the composed service is its own
queries = [Path(p).read_bytes() for p in sys.argv[3:]]
urls = [sys.argv[2] + "/q/" + Path(p).name for p in sys.argv[3:]]
for data in queries[:5]:
    lookups.find_similar_bytes(data, 5)
upload, by_url = [], []
for _ in range(3):
    for data, url in zip(queries, urls):
        started = time.perf_counter(); lookups.find_similar_bytes(data, 5); upload.append(time.perf_counter() - started)
        started = time.perf_counter(); lookups.find_similar(url, 5); by_url.append(time.perf_counter() - started)
print(json.dumps({"upload_ms": statistics.median(upload) * 1000, "by_url_ms": statistics.median(by_url) * 1000}))
"""


def product(seed: int) -> Image.Image:
    from dupcheck_tools.samples import product_image

    return product_image(seed, (640, 480))


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def image_server(folder: Path) -> tuple[ImageServer, str]:
    """The folder's pictures at /q/<name>."""
    server = ImageServer()
    for path in folder.iterdir():
        server.add(f"/q/{path.name}", path.read_bytes())
    return server, server.base_url


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000


def timed(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[float, int]:  # fmt: skip
    started = time.perf_counter()
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    response.read()
    return time.perf_counter() - started, response.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=Path, default=ROOT / "lambdas", help="the code to measure")
    parser.add_argument("--catalog", type=int, default=200, help="catalog pictures (default 200)")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(args.lambdas.resolve()), "DUPCHECK_ALLOW_LOOPBACK_URLS": "true"}
    with tempfile.TemporaryDirectory() as tmp:
        catalog, queries, data = Path(tmp) / "catalog", Path(tmp) / "queries", Path(tmp) / "data"
        catalog.mkdir()
        queries.mkdir()
        for i in range(args.catalog):
            (catalog / f"P{i:05d}.jpg").write_bytes(jpeg(product(10_000 + i)))
        for i in range(args.queries):  # a resized, brightened, recompressed copy of a catalog picture
            picture = product(10_000 + rng.randrange(args.catalog)).resize((400, 300))
            (queries / f"q{i:03d}.jpg").write_bytes(jpeg(ImageEnhance.Brightness(picture).enhance(1.1), 70))
        subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "index-dir", str(catalog)],
                       check=True, env=env, capture_output=True)  # fmt: skip
        images, images_url = image_server(queries)
        query_files = sorted(queries.iterdir())
        in_process = json.loads(subprocess.run(
            [sys.executable, "-c", IN_PROCESS, str(data), images_url, *map(str, query_files)],
            check=True, env=env, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1])  # fmt: skip

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    if timed(probe, "GET", "/health")[1] == 200:
                        probe.close()
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            results = measure(port, images_url, query_files, in_process, args, psutil.Process(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=10)
            images.close()
    results["code"] = str(args.lambdas)
    for name, value in results.items():
        print(f"{name}: {value}")
    print(json.dumps(results))


def measure(port: int, images_url: str, query_files: list[Path], in_process: dict[str, float],
            args: argparse.Namespace, server: psutil.Process) -> dict[str, object]:  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(20):
        timed(connection, "GET", "/health")
    health = [timed(connection, "GET", "/health")[0] for _ in range(500)]
    uploads = [f.read_bytes() for f in query_files]
    by_url, upload = [], []
    for _ in range(3):
        for path, body in zip(query_files, uploads, strict=True):
            url = quote(f"{images_url}/q/{path.name}", safe="")
            by_url.append(timed(connection, "GET", f"/find_similar?image_url={url}&top=5")[0])
            upload.append(timed(connection, "POST", "/find_similar?top=5", body, {"Content-Type": "image/jpeg"})[0])
    results: dict[str, object] = {
        "health_p50_ms": round(percentile(health, 0.5), 2),
        "health_p99_ms": round(percentile(health, 0.99), 2),
        "find_upload_p50_ms": round(percentile(upload, 0.5), 1),
        "find_upload_in_process_ms": round(in_process["upload_ms"], 1),
        "find_upload_ratio": round(percentile(upload, 0.5) / in_process["upload_ms"], 2),
        "find_by_url_p50_ms": round(percentile(by_url, 0.5), 1),
        "find_by_url_in_process_ms": round(in_process["by_url_ms"], 1),
        "find_by_url_ratio": round(percentile(by_url, 0.5) / in_process["by_url_ms"], 2),
    }
    # Every client here is 127.0.0.1, one address to the server's per-client connection cap (16):
    # this connection left open would make the load's 16 clients 17, and one of them refused.
    connection.close()
    results.update(load(port, images_url, query_files, uploads, args, server))
    return results


def load(port: int, images_url: str, query_files: list[Path], uploads: list[bytes], args: argparse.Namespace,
         server: psutil.Process) -> dict[str, object]:  # fmt: skip
    stop = time.monotonic() + args.load_seconds
    counts = {"requests": 0, "errors": 0}
    lock = threading.Lock()
    errors: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            pick = rng.randrange(len(query_files))
            kind = rng.choice(("health", "url", "upload"))
            try:
                if kind == "health":
                    _, status = timed(connection, "GET", "/health")
                elif kind == "url":
                    url = quote(f"{images_url}/q/{query_files[pick].name}", safe="")
                    _, status = timed(connection, "GET", f"/find_similar?image_url={url}&top=5")
                else:
                    _, status = timed(connection, "POST", "/find_similar?top=5", uploads[pick],
                                      {"Content-Type": "image/jpeg"})  # fmt: skip
                failed = status != 200
            except (OSError, http.client.HTTPException) as exc:
                failed, status = True, 0
                errors.append(type(exc).__name__)
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                counts["requests"] += 1
                counts["errors"] += failed

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    rss: list[tuple[float, float]] = []
    while any(t.is_alive() for t in threads):
        rss.append((time.monotonic() - started, server.memory_info().rss / 2**20))
        time.sleep(1.0)
    warm = next((mb for t, mb in rss if t >= min(10.0, args.load_seconds / 3)), rss[0][1])
    return {
        "load_clients": args.clients,
        "load_seconds": args.load_seconds,
        "load_requests": counts["requests"],
        "load_errors": counts["errors"],
        "load_error_kinds": sorted(set(errors)),
        "load_requests_per_s": round(counts["requests"] / args.load_seconds, 1),
        "rss_after_warmup_mb": round(warm, 1),
        "rss_at_end_mb": round(rss[-1][1], 1),
        "rss_max_mb": round(max(mb for _, mb in rss), 1),
    }


if __name__ == "__main__":
    main()
