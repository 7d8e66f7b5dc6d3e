"""Memory the local server gives back after a load: its process tree's RSS idle, at the peak of a
mixed load, and once the load has stopped.

`python -m dupcheck serve` is started on loopback over a catalog of development photos
(../shared/bench/images, `index-dir`), warmed with one request of each kind, left idle, then
loaded by `--clients` clients for `--duration` seconds, each picking at random: an upload
(`PUT /items/{id}`: a photo, 15% of them a 12 MP JPEG or PNG), a check
(`POST /find_similar` with a photo) or a catalog page (`GET /items`, with a search now and
then). Then nothing for `--settle` seconds. RSS of the server and its children is sampled every
0.5 s; reported as JSON: idle (before the load), peak, after (at the end of the settle; the
server's own split into anonymous and file-backed pages), and after minus idle against the
target of 100 MB (issue 67).

    .venv/bin/python scripts/bench/memory_soak_bench.py [--duration 300] [--settle 90] [--clients 8]
        [--catalog 200] [--photos DIR] [--lambdas DIR] [--env NAME=VALUE ...]

`--lambdas` measures other code (a worktree of the baseline commit); `--env` sets a variable in
the server's environment (MALLOC_ARENA_MAX=2: glibc's heaps capped, docs/lab/benchmarks.md).
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT.parent / "shared" / "bench" / "images"  # ../shared beside the checkout (--photos elsewhere)
TARGET_MB = 100
LARGE_SIDE = 4000  # a photo scaled to 4000 x 3000: 12 MP, what a phone camera uploads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_mb(server: psutil.Process) -> tuple[float, float]:
    """RSS of the server and of all its children, and of the server alone, in MB."""
    main = server.memory_info().rss
    children = 0
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a child that just ended
            children += child.memory_info().rss
    return (main + children) / 2**20, main / 2**20


def anon_and_file_mb(server: psutil.Process) -> tuple[float, float]:
    """The server's RSS in anonymous memory (what malloc holds) and in mapped files (libraries,
    SQLite's memory-mapped reads), in MB: the kernel takes file pages back when it needs them."""
    status = Path(f"/proc/{server.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if line.startswith("Rss"))
    return int(fields["RssAnon"].split()[0]) / 1024, int(fields["RssFile"].split()[0]) / 1024


def scaled(photo: bytes, fmt: str) -> bytes:
    """`photo` scaled to 12 MP with a camera's grain (so it does not compress to nothing): a 4 MB
    JPEG, an 11 MB PNG (the review uploaded an 18 MB PNG)."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    image = image.resize((LARGE_SIDE, LARGE_SIDE * 3 // 4), Image.Resampling.BILINEAR)
    grain = np.random.default_rng(len(photo)).normal(0, 6 if fmt == "JPEG" else 4, (image.height, image.width, 1))
    image = Image.fromarray((np.asarray(image) + grain).clip(0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {"compress_level": 1}))
    return out.getvalue()


class Load:
    """The clients: each its own keep-alive connection, its own random choices."""

    def __init__(self, port: int, photos: list[bytes], large: list[tuple[bytes, str]], stop: threading.Event) -> None:
        self.port, self.photos, self.large, self.stop = port, photos, large, stop
        self.statuses: Counter[str] = Counter()
        self.lock = threading.Lock()

    def client(self, number: int) -> None:
        rng = random.Random(number)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sequence = 0
        while not self.stop.is_set():
            roll = rng.random()
            if roll < 0.35:  # an upload: a new item, now and then a large picture
                sequence += 1
                body, kind, what = rng.choice(self.photos), "jpeg", "upload"
                if self.large and rng.random() < 0.15:
                    (body, kind), what = rng.choice(self.large), "upload-12mp"
                request = ("PUT", f"/items/load-{number}-{sequence}?sku=S{sequence}", body, f"image/{kind}")
            elif roll < 0.75:  # a check
                what, request = "check", ("POST", "/find_similar?top=5", rng.choice(self.photos), "image/jpeg")
            else:  # a catalog page, a search now and then
                query = f"&q={rng.choice('abcdefgh')}" if rng.random() < 0.3 else ""
                what, request = "page", ("GET", f"/items?limit=100{query}", None, "")
            method, path, body, content_type = request
            try:
                connection.request(method, path, body=body, headers={"Content-Type": content_type} if body else {})
                response = connection.getresponse()
                response.read()
                outcome = f"{what} {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = f"{what} {type(exc).__name__}"
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            with self.lock:
                self.statuses[outcome] += 1
        connection.close()


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            answer = json.loads(connection.getresponse().read())
            connection.close()
            if answer.get("status") == "ok" and answer.get("index_ready"):
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready in 120 s")
        time.sleep(0.5)


def sample(server: psutil.Process, seconds: float, samples: list[tuple[float, float]]) -> None:
    """RSS every 0.5 s for `seconds`, appended to `samples`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(tree_rss_mb(server))
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    parser.add_argument("--settle", type=float, default=90.0, help="seconds after the load (default 90)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--catalog", type=int, default=200, help="photos indexed before the load")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="the development photos (../shared/bench/images)")
    parser.add_argument("--lambdas", type=Path, default=ROOT / "lambdas", help="the code to measure")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server's environment")
    args = parser.parse_args()
    files = sorted(args.photos.glob("*.jpg"))
    if len(files) < args.catalog + 50:
        sys.exit(f"{args.photos} holds {len(files)} photos: fewer than --catalog + 50")
    env = {**os.environ, "PYTHONPATH": str(args.lambdas.resolve()), "DUPCHECK_PRODUCTS": "off"}
    env.update(item.split("=", 1) for item in args.env)
    rng = random.Random(67)
    rng.shuffle(files)
    with tempfile.TemporaryDirectory() as tmp:
        catalog, data = Path(tmp) / "catalog", Path(tmp) / "data"
        catalog.mkdir()
        for path in files[: args.catalog]:
            shutil.copy(path, catalog / path.name)
        subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "index-dir", str(catalog)],
                       check=True, env=env, capture_output=True)  # fmt: skip
        photos = [p.read_bytes() for p in files[args.catalog :]]  # checks and uploads: not in the catalog
        large = [(scaled(photos[i], "JPEG"), "jpeg") for i in range(3)] + [(scaled(photos[3], "PNG"), "png")]
        port = free_port()
        log = (Path(tmp) / "server.log").open("w")  # a pipe nobody reads would stop the server once full
        process = subprocess.Popen(
            [sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = psutil.Process(process.pid)
        try:
            wait_ready(port)
            stop = threading.Event()
            load = Load(port, photos, large, stop)
            # One request of each kind, then idle: what lazy imports take is not what the load leaves.
            warm_up = [("POST", "/find_similar?top=5", photos[0]), ("GET", "/items?limit=100", None),
                       ("PUT", "/items/warm?sku=W", photos[1])]  # fmt: skip
            for method, path, body in warm_up:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request(method, path, body=body, headers={"Content-Type": "image/jpeg"} if body else {})
                connection.getresponse().read()
                connection.close()
            idle: list[tuple[float, float]] = []
            sample(server, 15, idle)
            clients = [threading.Thread(target=load.client, args=(n,), daemon=True) for n in range(args.clients)]
            for thread in clients:
                thread.start()
            during: list[tuple[float, float]] = []
            sample(server, args.duration, during)
            stop.set()
            for thread in clients:
                thread.join(timeout=120)
            after: list[tuple[float, float]] = []
            sample(server, args.settle, after)
            anon_mb, file_mb = anon_and_file_mb(server)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
            if process.returncode not in (0, -15):
                print((Path(tmp) / "server.log").read_text()[-3000:], file=sys.stderr)
    idle_mb, peak_mb, after_mb = idle[-1][0], max(s[0] for s in during + after), after[-1][0]
    result = {
        "code": str(args.lambdas), "env": args.env, "duration_s": args.duration, "settle_s": args.settle,
        "clients": args.clients, "catalog": args.catalog, "requests": sum(load.statuses.values()),
        "outcomes": dict(sorted(load.statuses.items())),
        "idle_mb": round(idle_mb, 1), "peak_mb": round(peak_mb, 1), "after_mb": round(after_mb, 1),
        "main_idle_mb": round(idle[-1][1], 1), "main_peak_mb": round(max(s[1] for s in during + after), 1),
        "main_after_mb": round(after[-1][1], 1), "main_after_anon_mb": round(anon_mb, 1),
        "main_after_file_mb": round(file_mb, 1), "after_minus_idle_mb": round(after_mb - idle_mb, 1),
        "target_mb": TARGET_MB, "met": after_mb - idle_mb <= TARGET_MB,
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
