"""Where a backfill's CPU goes, per image: each thread of the backfill process and its hashing
processes, over the loopback image server of backfill_bench.py.

    .venv/bin/python scripts/bench/backfill_profile.py [--images 1200] [--latency-ms 50]

Runs the backfill in this process (`backfill_catalog`, as the command does after its imports),
so that each thread's CPU time (user + system, from getrusage(RUSAGE_THREAD) when the thread
ends) can be summed by role: the download threads (`fetch`), the dispatcher, the pool's manager
and queue feeder threads, the writer and the main thread (reader and store checks). The hashing
processes' CPU is what this process's reaped children used (their start included). Other work
on the machine slows the run but hardly changes CPU per image. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import backfill_bench as bench  # scripts/bench/backfill_bench.py: the image server and catalog

CPU: collections.Counter[str] = collections.Counter()
SYSTEM: collections.Counter[str] = collections.Counter()
_bootstrap_inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _counted(self: threading.Thread) -> None:
    """Every thread's CPU time, added to its role's when it ends."""
    try:
        _bootstrap_inner(self)
    finally:
        plain = type(self) is threading.Thread
        role = self.name.split("-")[0] if plain else type(self).__name__
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        CPU[role] += usage.ru_utime + usage.ru_stime
        SYSTEM[role] += usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    threading.Thread._bootstrap_inner = _counted  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="dupcheck-profile-") as tmp:
        work = Path(tmp)
        images = bench.prepare_images(work / "images", args.images)
        server, base = bench.start_server(work / "images", args.latency_ms / 1000.0)
        try:
            catalog = work / "catalog.csv"
            bench.write_catalog(catalog, base, args.images)
            os.environ.update(DUPCHECK_ALLOW_LOOPBACK_URLS="true", DUPCHECK_DATA_DIR=str(work / "data"))
            started = time.process_time()
            from dupcheck.bootstrap import one_blas_thread
            from dupcheck_tools.backfill import BackfillOptions, backfill_catalog

            one_blas_thread()  # as `python -m dupcheck` does
            imports = time.process_time() - started
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            main_thread, process = time.thread_time(), time.process_time()
            summary = backfill_catalog(catalog, options=BackfillOptions(progress=False))
            main_thread, process = time.thread_time() - main_thread, time.process_time() - process
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            server.terminate()
            server.join(5)
    done = max(1, summary.done)

    def per_image(seconds: float) -> float:
        return round(seconds / done * 1000, 3)

    report: dict[str, Any] = {
        "images": images,
        "latency_ms": args.latency_ms,
        "done": summary.done,
        "failed": summary.failed,
        "images_per_s": summary.images_per_s,
        "load_average": os.getloadavg(),
        "cpu_ms_per_image": {
            "imports (before the run)": per_image(imports),
            "backfill process, the run": per_image(process),
            "  main thread (reader, store checks)": per_image(main_thread),
            **{f"  {role}": per_image(CPU[role]) for role, _ in CPU.most_common()},
            "hashing processes (their start included)": per_image(
                after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
            ),
        },
        "system_ms_per_image": {role: per_image(SYSTEM[role]) for role, _ in SYSTEM.most_common()},
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
