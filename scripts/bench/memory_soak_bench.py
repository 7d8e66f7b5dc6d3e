"""Memory the local server gives back after a load: its process tree's RSS and PSS idle, at the
peak of a mixed load, and once the load has stopped, over several rounds of the load back to back.

`python -m dupcheck serve` is started on loopback over a catalog of development photos
(../shared/bench/images, `index-dir`), with similar products as a shop's install has them (the
product model; `--env DUPCHECK_PRODUCTS=off` without), warmed with one request of each kind, left
idle, then loaded `--rounds` times for `--duration` seconds by `--clients` clients, each picking at
random: an upload (`PUT /items/{id}`: a photo, `--large-share` of them a 12 MP JPEG or PNG), an
item written from its address (`POST /items`), a check (`POST /find_similar` with a photo) or a
catalog page (`GET /items`, with a search now and then); beside them, an import of `--import-rows`
new pictures every `--import-every` seconds (`POST /imports`; every third of `--large-import-rows`,
which over 200 rows hashes in a process of its own; every tenth picture 12 MP) and one duplicate
scan `--scan-at` seconds into each round (`POST /duplicates/scans`; its verification runs in
processes). The pictures given by address come from an image host in this process. Once a round's
clients stop and its running import and scan have ended, its records are removed (each round
starts from the same catalog: a scan over the photos' copies of every round before ran for over
25 minutes in round 2), then nothing for `--settle` seconds (the tree `--settle` seconds after the
clients stopped is reported too: the jobs may run then); then the next round. `--busy-loops`
processes spin beside it all (a loaded machine, as a shop's server shares its cores): requests
last longer, so more pictures are decoded at once.

RSS and PSS of the server and every process under it (the import's hashing process, the scan's
verification processes, multiprocessing's resource tracker) are summed every 0.5 s. Each round's
curve is printed as it ends (idle, peak, `--settle` s after); then, as one JSON line (and in
`--json-out`): idle (before the first round), and for each round its peak, the tree after (at the
end of the settle: the tree and each process in it; the server's own split into anonymous and
file-backed pages), after minus idle against the target of 100 MB (issues 67, 86) and the growth
since the first round's after. PSS counts a page shared by several processes once, in shares: the
tree's RSS counts the libraries each worker maps again.

    .venv/bin/python scripts/bench/memory_soak_bench.py [--rounds 3] [--duration 300] [--settle 90]
        [--clients 8] [--large-share 0.15] [--busy-loops 2] [--catalog 200] [--import-every 20]
        [--import-rows 50] [--large-import-rows 250] [--scan-at 150] [--photos DIR] [--lambdas DIR]
        [--env NAME=VALUE ...] [--json-out FILE]

Run it under `nice` beside other work (its busy loops take what the machine has left). `--import-every 0`
and `--scan-at -1` leave the imports and the scan out (the load of the first measurements);
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
import signal
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

from scripts.bench.import_bench import Images
from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = BENCH_IMAGES  # ../shared beside the checkout (--photos elsewhere)
TARGET_MB = 100
LARGE_SIDE = 4000  # a photo scaled to 4000 x 3000: 12 MP, what a phone camera uploads
IMAGE_DELAY_S = 0.02  # the image host's answers: a CDN seen from elsewhere


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def role(process: psutil.Process, server: psutil.Process) -> str:
    """What a process of the tree is: the server, a pool's worker, or multiprocessing's resource tracker."""
    if process.pid == server.pid:
        return "server"
    command = " ".join(process.cmdline())
    if "resource_tracker" in command:
        return "resource_tracker"
    return "worker" if "spawn_main" in command else "other"


def pss_mb(pid: int) -> float:
    """The process's proportional set size (a shared page counted in shares), in MB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sample:
    """The tree at one moment: RSS and PSS in MB, summed and the server's own, and each process's."""

    def __init__(self, server: psutil.Process) -> None:
        self.at = time.monotonic()
        self.processes: list[tuple[str, float, float]] = []  # role, RSS, PSS
        for process in [server, *server.children(recursive=True)]:
            with contextlib.suppress(psutil.Error, OSError):  # a child that just ended
                self.processes.append((role(process, server), process.memory_info().rss / 2**20, pss_mb(process.pid)))
        self.rss = sum(rss for _, rss, _ in self.processes)
        self.pss = sum(pss for _, _, pss in self.processes)
        self.main = self.processes[0][1] if self.processes else 0.0
        self.workers = sum(1 for name, _, _ in self.processes if name == "worker")


def anon_and_file_mb(server: psutil.Process) -> tuple[float, float]:
    """The server's RSS in anonymous memory (what malloc holds) and in mapped files (libraries,
    SQLite's memory-mapped reads), in MB: the kernel takes file pages back when it needs them."""
    status = Path(f"/proc/{server.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if line.startswith("Rss"))
    return int(fields["RssAnon"].split()[0]) / 1024, int(fields["RssFile"].split()[0]) / 1024


def mapped_files_mb(server: psutil.Process, top: int = 5) -> dict[str, float]:
    """The files mapped into the server that hold most of its RSS (SQLite's memory-mapped reads,
    libraries), in MB."""
    held: Counter[str] = Counter()
    path = ""
    for line in Path(f"/proc/{server.pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's first line: address range ... [path]
            path = fields[5] if len(fields) > 5 else ""
        elif fields[0] == "Rss:" and path.startswith("/"):
            held[Path(path).name] += int(fields[1])
    return {name: round(kb / 1024, 1) for name, kb in held.most_common(top)}


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


def call(port: int, method: str, path: str, body: bytes | None = None, content_type: str = "") -> tuple[int, dict]:
    """One request on a connection of its own (the background jobs' few calls)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type} if content_type else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


class Load:
    """The clients: each its own keep-alive connection, its own random choices."""

    def __init__(self, port: int, photos: list[bytes], large: list[tuple[bytes, str]], host: Images,
                 stop: threading.Event, *, large_share: float, prefix: str) -> None:  # fmt: skip
        self.port, self.photos, self.large, self.host, self.stop = port, photos, large, host, stop
        self.large_share, self.prefix = large_share, prefix  # a round's ids: its own records
        self.statuses: Counter[str] = Counter()
        self.written: list[str] = []  # the ids of the records written
        self.lock = threading.Lock()

    def client(self, number: int) -> None:
        rng = random.Random(f"{self.prefix}{number}")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sequence = 0
        while not self.stop.is_set():
            roll = rng.random()
            sequence += 1
            if roll < 0.30:  # an upload: a new item, now and then a large picture
                body, kind, what = rng.choice(self.photos), "jpeg", "upload"
                if self.large and rng.random() < self.large_share:
                    (body, kind), what = rng.choice(self.large), "upload-12mp"
                entity = f"{self.prefix}load-{number}-{sequence}"
                request = ("PUT", f"/items/{entity}?sku=S{sequence}", body, f"image/{kind}")
            elif roll < 0.40:  # an item written from its picture's address
                entity = f"{self.prefix}url-{number}-{sequence}"
                item = {"entity_id": entity, "sku": f"U{sequence}",
                        "image_url": f"{self.host.base_url}/p/{rng.randrange(len(self.photos))}.jpg"}  # fmt: skip
                what, request = "item", ("POST", "/items", json.dumps(item).encode(), "application/json")
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
                if outcome.endswith(" 201"):
                    self.written.append(entity)
        connection.close()


class Jobs:
    """The load's background work: an import of new pictures every `every` seconds (the next one
    once the last has ended), of `rows[0]` rows and every third of `rows[1]`, a tenth of them
    12 MP, and one duplicate scan `scan_at` seconds in. `photos`: how many photos, then 12 MP
    pictures, the image host serves."""

    def __init__(self, port: int, host: Images, photos: tuple[int, int], *, every: float, rows: tuple[int, int],
                 scan_at: float, prefix: str) -> None:  # fmt: skip
        self.port, self.host, self.photos, self.prefix = port, host, photos, prefix
        self.every, self.rows, self.scan_at = every, rows, scan_at
        self.imports: list[dict] = []
        self.imported: list[str] = []  # the ids of the rows imports were given
        self.imports_ended: dict[str, int] = {}
        self.scan: dict = {}
        self._import: str | None = None
        self._scan: str | None = None

    def run(self, stop: threading.Event) -> None:
        started = time.monotonic()
        next_import = started
        while not stop.is_set():
            now = time.monotonic()
            if self.scan_at >= 0 and self._scan is None and now - started >= self.scan_at:
                status, scan = call(self.port, "POST", "/duplicates/scans")
                self._scan = scan["scan_id"] if status == 202 else "refused"
            if self.every > 0 and now >= next_import and self._ended("imports", self._import):
                number = len(self.imports)
                small, large = self.rows
                count = large if large and number % 3 == 2 else small
                rows = [f"{self.prefix}imp-{number}-{i},,{self.host.base_url}/p/{self.picture(number * small + i)}.jpg"
                        for i in range(count)]  # fmt: skip
                self.imported += [row.split(",", 1)[0] for row in rows]
                body = ("entity_id,sku,image_url\n" + "\n".join(rows)).encode()
                status, job = call(self.port, "POST", "/imports", body, "text/csv")
                self._import = job.get("job_id") if status == 202 else None
                self.imports.append({"status": status, "job_id": self._import})
                next_import = now + self.every
            stop.wait(0.5)

    def picture(self, row: int) -> int:
        """The image host's picture for an import's row: a photo, every tenth a 12 MP one."""
        photos, large = self.photos
        return photos + row // 10 % large if row % 10 == 9 else row % photos

    def _ended(self, kind: str, job_id: str | None) -> bool:
        if job_id is None or job_id == "refused":
            return True
        job = call(self.port, "GET", f"/{kind}/{job_id}" if kind == "imports" else f"/duplicates/scans/{job_id}")[1]
        return job.get("status") in ("done", "failed", "cancelled")

    def wait_ended(self, timeout: float = 1800) -> None:
        """Until the running import and the scan have ended; then what they did."""
        deadline = time.monotonic() + timeout
        while not (self._ended("imports", self._import) and self._ended("scans", self._scan)):
            if time.monotonic() > deadline:
                raise RuntimeError("the import or the scan did not end")
            time.sleep(0.5)
        if self._scan not in (None, "refused"):
            scan = call(self.port, "GET", f"/duplicates/scans/{self._scan}")[1]
            self.scan = {"status": scan.get("status"), **{k: (scan.get("result") or {}).get(k)
                         for k in ("records", "groups", "elapsed_s")}}  # fmt: skip
        counts: Counter[str] = Counter()
        for job_id in (started["job_id"] for started in self.imports if started["job_id"]):
            job = call(self.port, "GET", f"/imports/{job_id}")[1]
            counts[str(job.get("status"))] += 1
            counts.update({f"rows {k}": job.get(k) or 0 for k in ("done", "failed")})
        self.imports_ended = dict(counts)


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            answer = call(port, "GET", "/health")[1]
            if answer.get("status") == "ok" and answer.get("index_ready"):
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready in 120 s")
        time.sleep(0.5)


def sample(server: psutil.Process, seconds: float, samples: list[Sample]) -> None:
    """The tree every 0.5 s for `seconds`, appended to `samples`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(Sample(server))
        time.sleep(0.5)


def sample_until(server: psutil.Process, done: threading.Event, samples: list[Sample]) -> None:
    while not done.is_set():
        samples.append(Sample(server))
        done.wait(0.5)


def remove(port: int, ids: list[str], connections: int = 4) -> Counter[str]:
    """`DELETE /items/{id}` of each id, on a few connections: the round's records gone, so each round
    starts from the same catalog. The statuses (404: a row an import did not store)."""
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def delete(share: list[str]) -> None:
        for entity in share:
            status = call(port, "DELETE", f"/items/{entity}")[0]
            with lock:
                statuses[str(status)] += 1

    threads = [threading.Thread(target=delete, args=(ids[i::connections],)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def busy_loops(count: int) -> list[subprocess.Popen]:
    """`count` processes that spin until stopped: a machine whose cores are taken by other work."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


class Soak:
    """The server under test, its image host and the load's pictures: `round()` loads it once."""

    def __init__(self, args: argparse.Namespace, port: int, server: psutil.Process, photos: list[bytes],
                 large: list[tuple[bytes, str]], host: Images) -> None:  # fmt: skip
        self.args, self.port, self.server = args, port, server
        self.photos, self.large, self.host = photos, large, host
        self.scan_at = args.duration / 2 if args.scan_at is None else args.scan_at

    def round(self, number: int, idle: Sample) -> dict:
        """One round: the clients and jobs for `--duration` s, then until the jobs have ended, then
        `--settle` s of nothing; what the tree held through it."""
        args, prefix = self.args, f"r{number}-"
        stop = threading.Event()
        load = Load(self.port, self.photos, self.large, self.host, stop, large_share=args.large_share, prefix=prefix)
        jobs = Jobs(self.port, self.host, (len(self.photos), len(self.large)), every=args.import_every,
                    rows=(args.import_rows, args.large_import_rows), scan_at=self.scan_at, prefix=prefix)  # fmt: skip
        threads = [threading.Thread(target=load.client, args=(n,), daemon=True) for n in range(args.clients)]
        threads.append(threading.Thread(target=jobs.run, args=(stop,), daemon=True))
        for thread in threads:
            thread.start()
        during: list[Sample] = []
        sample(self.server, args.duration, during)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        stopped = time.monotonic()
        ended = threading.Event()
        sampler = threading.Thread(target=sample_until, args=(self.server, ended, during), daemon=True)
        sampler.start()
        jobs.wait_ended()
        jobs_ran_on_s = time.monotonic() - stopped
        records = call(self.port, "GET", "/health")[1].get("records")
        removed = remove(self.port, load.written + jobs.imported)
        ended.set()
        sampler.join()
        after: list[Sample] = []
        sample(self.server, args.settle, after)
        anon_mb, file_mb = anon_and_file_mb(self.server)
        last = after[-1]
        # `settle` seconds after the clients stopped, whether or not the import and the scan had ended.
        later = next(s for s in during + after if s.at >= stopped + args.settle)
        return {
            "round": number, "records": records, "removed": dict(removed), "requests": sum(load.statuses.values()),
            "outcomes": dict(sorted(load.statuses.items())),
            "imports": jobs.imports_ended, "scan": jobs.scan, "jobs_ran_on_s": round(jobs_ran_on_s, 1),
            "peak_workers": max(s.workers for s in during),
            "peak_mb": round(max(s.rss for s in during + after), 1),
            "peak_pss_mb": round(max(s.pss for s in during + after), 1),
            "after_mb": round(last.rss, 1), "after_pss_mb": round(last.pss, 1),
            "after_minus_idle_mb": round(last.rss - idle.rss, 1),
            "after_minus_idle_pss_mb": round(last.pss - idle.pss, 1),
            "after_processes": [{"role": name, "rss_mb": round(rss, 1), "pss_mb": round(pss, 1)}
                                for name, rss, pss in last.processes],  # fmt: skip
            "main_peak_mb": round(max(s.main for s in during + after), 1), "main_after_mb": round(last.main, 1),
            "main_after_anon_mb": round(anon_mb, 1), "main_after_file_mb": round(file_mb, 1),
            "main_after_files_mb": mapped_files_mb(self.server),
            "clients_after_mb": round(later.rss, 1), "clients_after_pss_mb": round(later.pss, 1),
            "clients_after_workers": later.workers,
        }  # fmt: skip


def curve(one: dict, idle_mb: float, settle_s: float) -> str:
    """A round's line: idle, peak and after, in MB of the tree's RSS."""
    return (f"round {one['round']}: idle {idle_mb:.0f} MB, peak {one['peak_mb']:.0f} MB, {settle_s:g} s after its "
            f"last job {one['after_mb']:.0f} MB ({one['after_minus_idle_mb']:+.0f}; the server "
            f"{one['main_after_mb']:.0f}), {settle_s:g} s after its clients {one['clients_after_mb']:.0f} MB "
            f"({one['clients_after_workers']} workers); {one['requests']} requests, jobs ran on "
            f"{one['jobs_ran_on_s']:.0f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="loads back to back (default 3)")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load a round (default 300)")
    parser.add_argument("--settle", type=float, default=90.0, help="seconds after each round (default 90)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--large-share", type=float, default=0.15, help="uploads that are 12 MP (default 0.15)")
    parser.add_argument("--busy-loops", type=int, default=2, help="processes spinning beside it (default 2)")
    parser.add_argument("--catalog", type=int, default=200, help="photos indexed before the load")
    parser.add_argument("--import-every", type=float, default=20.0, help="seconds between imports (0: none)")
    parser.add_argument("--import-rows", type=int, default=50, help="rows of an import (hashed in-process)")
    parser.add_argument("--large-import-rows", type=int, default=250, help="rows of every third (0: none)")
    parser.add_argument("--scan-at", type=float, default=None, help="seconds into a round (default: half; -1: none)")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="the development photos (../shared/bench/images)")
    parser.add_argument("--lambdas", type=Path, default=ROOT / "lambdas", help="the code to measure")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server's environment")
    parser.add_argument("--json-out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    files = sorted(args.photos.glob("*.jpg"))
    if len(files) < args.catalog + 50:
        sys.exit(f"{args.photos} holds {len(files)} photos: fewer than --catalog + 50")
    env = {**os.environ, "PYTHONPATH": str(args.lambdas.resolve()), "DUPCHECK_ALLOW_LOOPBACK_URLS": "true"}
    env.update(item.split("=", 1) for item in args.env)
    rng = random.Random(67)
    rng.shuffle(files)
    rounds: list[dict] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stop ends the server and the loops too
    loops = busy_loops(args.busy_loops)
    with tempfile.TemporaryDirectory() as tmp:
        catalog, data = Path(tmp) / "catalog", Path(tmp) / "data"
        catalog.mkdir()
        for path in files[: args.catalog]:
            shutil.copy(path, catalog / path.name)
        subprocess.run([sys.executable, "-m", "dupcheck", "--data-dir", str(data), "index-dir", str(catalog)],
                       check=True, env=env, capture_output=True)  # fmt: skip
        photos = [p.read_bytes() for p in files[args.catalog :]]  # checks, uploads, imports: not in the catalog
        large = [(scaled(photos[i], "JPEG"), "jpeg") for i in range(3)] + [(scaled(photos[3], "PNG"), "png")]
        host = Images(photos + [body for body, _ in large], IMAGE_DELAY_S)  # the large ones last
        port = free_port()
        log = (Path(tmp) / "server.log").open("w")  # a pipe nobody reads would stop the server once full
        process = subprocess.Popen(
            [sys.executable, "-m", "dupcheck", "--data-dir", str(data), "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = psutil.Process(process.pid)
        try:
            wait_ready(port)
            # One request of each kind, then idle: what lazy imports take is not what the load leaves.
            warm_up = [("POST", "/find_similar?top=5", photos[0], "image/jpeg"), ("GET", "/items?limit=100", None, ""),
                       ("PUT", "/items/warm?sku=W", photos[1], "image/jpeg"),
                       ("POST", "/items", json.dumps({"entity_id": "warm-url", "image_url": f"{host.base_url}/p/2.jpg"})
                        .encode(), "application/json")]  # fmt: skip
            for method, path, body, content_type in warm_up:
                call(port, method, path, body, content_type)
            products = call(port, "POST", "/similar_products?top=5", photos[0], "image/jpeg")[0] == 200
            idle: list[Sample] = []
            sample(server, 15, idle)
            rest = idle[-1]
            idle_anon_mb, idle_file_mb = anon_and_file_mb(server)
            soak = Soak(args, port, server, photos, large, host)
            for number in range(1, args.rounds + 1):
                rounds.append(soak.round(number, rest))
                print(curve(rounds[-1], rest.rss, args.settle), flush=True)
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
            host.close()
            if process.returncode not in (0, -15):
                print((Path(tmp) / "server.log").read_text()[-3000:], file=sys.stderr)
    first, worst = rounds[0], max(rounds, key=lambda one: one["after_minus_idle_mb"])
    code = args.lambdas.resolve()  # no machine's path in a record
    result = {
        "code": str(code.relative_to(ROOT)) if code.is_relative_to(ROOT) else code.name, "env": args.env,
        "products": products,
        "rounds": args.rounds, "duration_s": args.duration, "settle_s": args.settle, "clients": args.clients,
        "large_share": args.large_share, "busy_loops": args.busy_loops, "catalog": args.catalog,
        "import_every_s": args.import_every, "import_rows": [args.import_rows, args.large_import_rows],
        "scan_at_s": soak.scan_at,
        "idle_mb": round(rest.rss, 1), "idle_pss_mb": round(rest.pss, 1), "main_idle_mb": round(rest.main, 1),
        "main_idle_anon_mb": round(idle_anon_mb, 1), "main_idle_file_mb": round(idle_file_mb, 1),
        "per_round": rounds,
        # the worst round, and what each round kept beyond the first's
        "peak_mb": max(one["peak_mb"] for one in rounds), "after_minus_idle_mb": worst["after_minus_idle_mb"],
        "after_minus_idle_pss_mb": max(one["after_minus_idle_pss_mb"] for one in rounds),
        "growth_mb": [round(one["after_mb"] - first["after_mb"], 1) for one in rounds[1:]],
        "target_mb": TARGET_MB, "met": all(one["after_minus_idle_mb"] <= TARGET_MB for one in rounds),
    }  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
