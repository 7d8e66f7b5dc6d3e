"""A catalog import on the local server: its rows per second, and find_similar's latency while it runs.

`python -m dupcheck serve` runs in its own process, with its defaults (8 downloads at once, one
hashing process per import job). Its pictures come from a loopback image server in this
process that answers every request `--delay` seconds late (50 ms: a shop's image host or CDN
seen from elsewhere). Each round measures, in an order that rotates from round to round:

* idle: find_similar (POST, an uploaded picture: a person checking one in the web app) p50 and
  p90 over `--queries` calls, back to back on one keep-alive connection, nothing else running:
  before the first job and after each (the loaded job's baseline is the mean of the two around it,
  so the machine's own drift weighs on both sides alike);
* alone: POST /imports of `--rows` image URLs (CSV), timed from the request to `done`, nothing
  else calling the server: rows per second;
* loaded: the same size of import while find_similar is called back to back (the worst a
  person can do): the job's rows per second, and find_similar's p50 and p90 meanwhile;
* backfill: the same rows through `python -m dupcheck backfill` (the operator's path before
  imports: its own process, 32 downloads, a hashing process per core), into the same store,
  timed from the command's start to its exit: the baseline for rows per second.

Every import and backfill has rows of its own (new ids), so nothing is skipped. Figures are the
medians over the rounds of each ratio: find_similar p50 loaded / idle (target <= 2x), import
alone / backfill, import loaded / alone. For scale, `1 / delay` is what one download at a time
could reach at best.

    .venv/bin/python scripts/bench/import_bench.py [--rows 1200] [--delay 0.05] [--rounds 3] [--synthetic]
    DUPCHECK_IMPORT_HASH_NICENESS=0 .venv/bin/python scripts/bench/import_bench.py   # the server reads DUPCHECK_*

Pictures are the real photographs of ../shared/bench/images (cycled to `--rows`), or generated
product pictures with --synthetic. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from scripts.helpers.loopback import ImageServer, numbered
from scripts.helpers.places import BENCH_IMAGES

ROOT = Path(__file__).resolve().parents[2]
SHARED = BENCH_IMAGES


def pictures(count: int, synthetic: bool) -> list[bytes]:
    if not synthetic and SHARED.is_dir():
        files = sorted(SHARED.glob("*.jpg"))
        return [files[i % len(files)].read_bytes() for i in range(count)]
    from dupcheck_tools.samples import encode, product_image

    return [encode(product_image(10_000 + i, (640, 480))) for i in range(count)]


def Images(images: list[bytes], delay: float) -> ImageServer:  # noqa: N802  (what the benchmarks of imports serve)
    """Serves `/p/<n>.jpg` from memory, each answer `delay` seconds late (`.delay` may change)."""
    return ImageServer(numbered(images), delay=delay)


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str = "") -> tuple[int, dict]:
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body, {"Content-Type": content_type} if content_type else {})
                response = self.connection.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closes a connection idle for 30 s (channel_timeout): open another.
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def environment(data_dir: Path) -> dict[str, str]:
    return dict(os.environ, DUPCHECK_DATA_DIR=str(data_dir), DUPCHECK_PORT="0", DUPCHECK_ALLOW_LOOPBACK_URLS="true",
                PYTHONPATH=str(ROOT / "lambdas"))  # fmt: skip


def serve(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "dupcheck", "serve"], env=environment(data_dir),
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.split("serving on ", 1)[1].split()[0]


def backfill(data_dir: Path, body: bytes) -> float:
    """`python -m dupcheck backfill` of the catalog `body` into the store of `data_dir`; seconds."""
    with tempfile.TemporaryDirectory(prefix="import-bench-backfill-") as folder:
        path = Path(folder) / "catalog.csv"
        path.write_bytes(body)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dupcheck", "backfill", "--catalog", str(path), "--target", "local",
                        "--no-progress", "--failures", str(Path(folder) / "failures.csv")],
                       env=environment(data_dir), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        return time.perf_counter() - started


def catalog(images: Images, first: int, count: int, prefix: str) -> bytes:
    rows = [f"{prefix}{i:05d},,{images.base_url}/p/{i}.jpg" for i in range(first, first + count)]
    lines = ["entity_id,sku,image_url", *rows]
    return ("\n".join(lines) + "\n").encode()


def run_job(client: Client, body: bytes, on_tick: threading.Event | None = None) -> tuple[dict, float]:
    started = time.perf_counter()
    status, job = client.call("POST", "/imports", body, "text/csv")
    assert status == 202, job
    while job["status"] not in ("done", "failed", "cancelled"):
        time.sleep(0.2)
        job = client.call("GET", f"/imports/{job['job_id']}")[1]
        if on_tick is not None and job["status"] == "running" and job["done"]:
            on_tick.set()
    return job, time.perf_counter() - started


def latencies(client: Client, queries: list[bytes], *, count: int | None = None, until: threading.Event | None = None
              ) -> list[float]:  # fmt: skip
    out: list[float] = []
    i = 0
    while (count is None or len(out) < count) and not (until is not None and until.is_set()):
        started = time.perf_counter()
        status, answer = client.call("POST", "/find_similar?top=5", queries[i % len(queries)], "image/jpeg")
        out.append(time.perf_counter() - started)
        assert status == 200, answer
        i += 1
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds the image server waits per request")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four measurements (medians over them)")
    parser.add_argument("--queries", type=int, default=100, help="find_similar calls measured while idle")
    parser.add_argument("--seed", type=int, default=200, help="records in the catalog before the first round")
    parser.add_argument("--synthetic", action="store_true", help="generated pictures instead of the shared photos")
    args = parser.parse_args()

    photos = pictures(args.seed + args.rows, args.synthetic)
    queries = []
    for data in photos[args.rows :: max(1, args.seed // 20)]:  # re-encoded smaller copies of seed pictures
        small = Image.open(io.BytesIO(data)).convert("RGB")
        small.thumbnail((480, 480))
        out = io.BytesIO()
        small.save(out, "JPEG", quality=80)
        queries.append(out.getvalue())
    images = Images(photos, args.delay)
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="import-bench-") as folder:
        data_dir = Path(folder) / "data"
        proc, base = serve(data_dir)
        try:
            client, probe = Client(base), Client(base)
            images.delay = 0.0  # the seed catalog is not what is measured
            seeded, _ = run_job(client, catalog(images, args.rows, args.seed, "S"))
            assert seeded["done"] == args.seed, seeded
            images.delay = args.delay
            latencies(probe, queries, count=20)  # warm up

            def idle() -> dict[str, float]:
                return summary(latencies(probe, queries, count=args.queries))

            def alone(r: dict) -> None:
                job, elapsed = run_job(client, catalog(images, 0, args.rows, f"A{len(rounds)}-"))
                assert job["done"] == args.rows, job
                r["alone_rows_per_s"] = round(args.rows / elapsed, 1)

            def loaded(r: dict) -> None:
                running, finished = threading.Event(), threading.Event()
                during: list[float] = []

                def probe_while_running() -> None:
                    running.wait()
                    during.extend(latencies(probe, queries, until=finished))

                prober = threading.Thread(target=probe_while_running)
                prober.start()
                job, elapsed = run_job(client, catalog(images, 0, args.rows, f"L{len(rounds)}-"), on_tick=running)
                finished.set()
                prober.join()
                assert job["done"] == args.rows, job
                r["loaded_rows_per_s"], r["loaded"] = round(args.rows / elapsed, 1), summary(during)

            def baseline(r: dict) -> None:
                elapsed = backfill(data_dir, catalog(images, 0, args.rows, f"B{len(rounds)}-"))
                r["backfill_rows_per_s"] = round(args.rows / elapsed, 1)

            jobs = [alone, loaded, baseline]
            for number in range(args.rounds):
                # Each job in each place in turn; find_similar idle before and after every job: the
                # loaded job's baseline is the mean of the two idle p50s around it.
                order = jobs[number % 3 :] + jobs[: number % 3]
                r: dict = {"order": [job.__name__ for job in order], "idle": [idle()]}
                for job in order:
                    job(r)
                    r["idle"].append(idle())
                at = order.index(loaded)
                r["idle_p50_ms"] = round((r["idle"][at]["p50_ms"] + r["idle"][at + 1]["p50_ms"]) / 2, 1)
                r["p50_ratio"] = round(r["loaded"]["p50_ms"] / r["idle_p50_ms"], 2)
                rounds.append(r)
                print(json.dumps(r), file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def median(key: str, of: Any = None) -> float:
        return round(statistics.median(of(r) if of else r[key] for r in rounds), 2)

    result = {
        "rows": args.rows, "delay_s": args.delay, "rounds": args.rounds,
        "pictures": "generated" if args.synthetic else "shared photos",
        "find_similar_p50_ms": {"idle": median("idle_p50_ms"),
                                "during_import": median("", lambda r: r["loaded"]["p50_ms"])},
        "find_similar_p90_ms": {"idle": median("", lambda r: statistics.median(i["p90_ms"] for i in r["idle"])),
                                "during_import": median("", lambda r: r["loaded"]["p90_ms"])},
        "p50_ratio_during_vs_idle": median("p50_ratio"),
        "rows_per_s": {"import_alone": median("alone_rows_per_s"), "import_during_queries": median("loaded_rows_per_s"),
                       "backfill": median("backfill_rows_per_s"), "one_download_at_a_time": round(1 / args.delay, 1)},
        "import_alone_vs_backfill": median("", lambda r: r["alone_rows_per_s"] / r["backfill_rows_per_s"]),
        "import_during_queries_vs_alone": median("", lambda r: r["loaded_rows_per_s"] / r["alone_rows_per_s"]),
        "per_round": rounds,
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
