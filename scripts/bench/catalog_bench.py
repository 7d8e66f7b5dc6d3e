"""Catalog bodies and results CSVs against a local server: time, CPU and memory (the wave-catalogs
issue's table, replayed).

Starts `python -m dupcheck serve` with the shipped defaults (stress_bench.py's `Server`: its RSS,
children included, sampled every 0.1 s), a fresh data dir holding one finished check job of
`--rows` checked rows (written before the server starts), and runs each probe in turn:

* blank-gzip:  a 2 MiB gzip of a header and 2 GiB of line ends, POST /imports;
* blank-plain: a header and 95 MB of line ends, POST /imports;
* four-catalogs: four 99 MB CSV catalogs POSTed at once; each job accepted is cancelled at once
  (its rows would be downloaded next: not what is measured);
* results-csv: GET /imports/{id}/results?format=csv of the seeded job.

Each prints its answers, seconds, the server's CPU seconds, and its RSS peak over the RSS it had
before the probe (and the same of its anonymous memory alone: RSS counts the pages of the SQLite
files the server maps, which results-csv reads); four-catalogs beside the catalog budget
(DUPCHECK_CATALOG_BUDGET_MB, 256 MB), the target. Last line: JSON of every figure.

    .venv/bin/python scripts/bench/catalog_bench.py [--lambdas DIR] [--only blank-gzip,...] [--rows 300000]

`--lambdas` runs the same probes against another checkout's code (a worktree of main: its answers
take minutes; `--timeout` bounds each request).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from scripts.bench.stress_bench import ROOT, Server, as_json, call

BUDGET_MB = 256  # DUPCHECK_CATALOG_BUDGET_MB's default
JOB_ID = "c" * 32
HEADER = b"entity_id,sku,image_url,description\n"


def seed(data_dir: Path, rows: int) -> None:
    """A finished check job of `rows` checked rows, as the local worker records them."""
    from dupcheck.adapters.sqlite_jobs import SqliteImportJobs
    from dupcheck.core.models import ImportJob, ImportOptions, JobStatus, Mode, Outcome, RowResult, Source, utc_now

    jobs = SqliteImportJobs(data_dir / "imports.sqlite3")
    now = utc_now()
    jobs.create(ImportJob(JOB_ID, JobStatus.DONE, Source.UPLOAD, now, now, ImportOptions(mode=Mode.CHECK)))
    match = {"entity_id": "CATALOG-0001", "sku": "SKU-0001", "image_url": "https://shop.example/media/0001.jpg",
             "distance": 12, "match_percent": 90.6, "verdict": "similar", "edits": ["cropped"],
             "edit_summary": "cropped on the right"}  # fmt: skip
    for start in range(1, rows + 1, 10_000):
        jobs.record(JOB_ID, [RowResult(n, Outcome.DONE, f"E{n:07d}", f"https://shop.example/media/{n:07d}.jpg",
                                       verdict="similar", match=match)
                             for n in range(start, min(start + 10_000, rows + 1))])  # fmt: skip


def anon_mb(process: psutil.Process) -> float:
    """The process tree's anonymous memory (RssAnon): RSS without the pages of files it maps (the
    SQLite files' mmap, which the kernel may drop at will)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            status = Path(f"/proc/{member.pid}/status").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("RssAnon:"))
    return total / 1024


class Probe:
    """Around one probe: seconds, the server's CPU seconds, and its RSS and anonymous memory's peaks
    over where they began."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> Probe:
        self.process = psutil.Process(self.server.proc.pid)
        self.cpu = sum(self.process.cpu_times()[:2])
        self.began, self.rss, self.anon = time.monotonic(), self.server.rss_mb(), anon_mb(self.process)
        self.anon_peak, self._done = self.anon, threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.anon_peak = max(self.anon_peak, anon_mb(self.process))

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.seconds = time.monotonic() - self.began
        self.cpu_s = sum(self.process.cpu_times()[:2]) - self.cpu
        self.extra_mb = self.server.peak_since(self.began) - self.rss
        self.anon_extra_mb = self.anon_peak - self.anon

    def figures(self) -> dict[str, float]:
        return {"seconds": round(self.seconds, 2), "cpu_s": round(self.cpu_s, 2), "rss_over_mb": round(self.extra_mb),
                "anon_over_mb": round(self.anon_extra_mb)}  # fmt: skip


def gzip_of_blank_lines(unpacked: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = b"\n" * 2**20
    parts = [packer.compress(HEADER)] + [packer.compress(block) for _ in range(unpacked // len(block))]
    return b"".join([*parts, packer.flush()])


def post(server: Server, body: bytes, content_type: str, timeout: float) -> tuple[int, dict]:
    status, answer, _ = call(f"{server.url}/imports", "POST", body, content_type, timeout=timeout)
    return status, as_json(answer)


def blank_gzip(server: Server, timeout: float) -> dict[str, Any]:
    data = gzip_of_blank_lines(2 * 2**30)
    with Probe(server) as probe:
        status, answer = post(server, data, "application/gzip", timeout)
    return {"body_kb": len(data) // 1024, "status": status, "code": answer.get("error", {}).get("code"),
            **probe.figures()}  # fmt: skip


def blank_plain(server: Server, timeout: float) -> dict[str, Any]:
    data = HEADER + b"\n" * 95_000_000
    with Probe(server) as probe:
        status, answer = post(server, data, "text/csv", timeout)
    return {"body_mb": len(data) // 2**20, "status": status, "code": answer.get("error", {}).get("code"),
            **probe.figures()}  # fmt: skip


def catalog_of(size: int, seed: int) -> bytes:
    """A CSV catalog of `size` bytes: rows of ~200 bytes with a description, as shops export."""
    line = b"S%d-%07d,SKU-%07d,https://shop.example/media/catalog/product/%07d.jpg,%s\n"
    text = b"lorem ipsum dolor sit amet " * 4
    rows = [line % (seed, i, i, i, text) for i in range(size // len(line % (seed, 0, 0, 0, text)) + 1)]
    return (HEADER + b"".join(rows))[:size].rsplit(b"\n", 1)[0] + b"\n"


def four_catalogs(server: Server, timeout: float) -> dict[str, Any]:
    bodies = [catalog_of(99 * 10**6, n) for n in range(4)]
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        answer = post(server, body, "text/csv", timeout)
        if answer[0] == 202:  # its rows are not what is measured: cancelled at once
            call(f"{server.url}/imports/{answer[1]['job_id']}", "DELETE")
        with lock:
            answers.append(answer)

    with Probe(server) as probe, ThreadPoolExecutor(4) as pool:
        list(pool.map(send, bodies))
    statuses = sorted(status for status, _ in answers)
    return {"statuses": statuses, "budget_mb": BUDGET_MB, "within_budget": probe.extra_mb <= BUDGET_MB,
            **probe.figures()}  # fmt: skip


def results_csv(server: Server, timeout: float) -> dict[str, Any]:
    with Probe(server) as probe:
        status, body, headers = call(f"{server.url}/imports/{JOB_ID}/results?format=csv", timeout=timeout)
    return {"status": status, "csv_mb": round(len(body) / 2**20, 1), "lines": body.count(b"\n"),
            "chunked": headers.get("Transfer-Encoding") == "chunked", **probe.figures()}  # fmt: skip


PROBES: dict[str, Callable[[Server, float], dict[str, Any]]] = {
    "blank-gzip": blank_gzip, "blank-plain": blank_plain, "four-catalogs": four_catalogs, "results-csv": results_csv,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=Path, default=ROOT / "lambdas", help="the code to run")
    parser.add_argument("--only", default="", help="comma-separated probe names (default: all)")
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the seeded job's results")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a request may take")
    args = parser.parse_args()
    chosen = [name for name in PROBES if not args.only or name in args.only.split(",")]
    figures: dict[str, Any] = {"code": str(args.lambdas)}
    with tempfile.TemporaryDirectory(prefix="dupcheck-catalogs-") as folder:
        data_dir = Path(folder)
        seed(data_dir, args.rows)
        server = Server(args.lambdas, data_dir)
        try:
            call(f"{server.url}/health")
            time.sleep(1)
            figures["idle_mb"] = round(server.rss_mb())
            for name in chosen:
                figures[name] = PROBES[name](server, args.timeout)
                print(f"{name:14} {json.dumps(figures[name])}", flush=True)
                time.sleep(3)  # what a probe freed goes back before the next begins
        finally:
            server.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
