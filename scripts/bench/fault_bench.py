"""Faults an operator meets, on the local server's import of `--rows` pictures (issue 67's
reproductions, at their size): its hashing process killed twice (SIGKILL, as the out-of-memory
killer sends it), and the server stopped with SIGTERM to its whole process group (systemd's stop)
mid-import, then started again.

    .venv/bin/python scripts/bench/fault_bench.py [--rows 600] [--delay 0.02] [--synthetic]

Prints one JSON line per fault: the job's counts at its end (every row done, none failed, is the
target), the pictures downloaded more than once, and for the stop the seconds from the signal to
the server's exit (target: within 10 s). Pictures and server are on 127.0.0.1 only (the loopback
image server and helpers of import_bench.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dupcheck_tools.local.imports import SMALL_JOB_ROWS
from scripts.bench.import_bench import Client, Images, catalog, environment, pictures
from scripts.helpers.loopback import ImageServer


def serve(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """The server in a session of its own (a process group, as systemd starts it)."""
    proc = subprocess.Popen([sys.executable, "-m", "dupcheck", "serve"], env=environment(data_dir),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split("serving on ", 1)[1].split()[0]


def wait_done(client: Client, job_id: str, at_least: int) -> dict:
    while (job := client.call("GET", f"/imports/{job_id}")[1])["done"] < at_least and job["status"] == "running":
        time.sleep(0.05)
    return job


def finish(client: Client, job_id: str) -> dict:
    while (job := client.call("GET", f"/imports/{job_id}")[1])["status"] not in ("done", "failed", "cancelled"):
        time.sleep(0.2)
    return {k: job[k] for k in ("status", "rows", "done", "skipped", "failed")}


def hashing_process(proc: subprocess.Popen[str], client: Client, job_id: str) -> psutil.Process | None:
    """The server's hashing process once it runs (it is started again after a kill); None when
    the job is no longer running by then."""
    while True:
        found = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        if found:
            return found[0]
        if client.call("GET", f"/imports/{job_id}")[1]["status"] != "running":
            return None
        time.sleep(0.05)


def killed_twice(images: ImageServer, rows: int, folder: Path) -> dict:
    proc, url = serve(folder / "killed")
    client = Client(url)
    try:
        _, job = client.call("POST", "/imports", catalog(images, 0, rows, "K"), "text/csv")
        kills = 0
        for at in (40, rows // 2):
            wait_done(client, job["job_id"], at)
            worker = hashing_process(proc, client, job["job_id"])
            if worker is None:
                break  # the job ended before its hashing process ran again
            worker.kill()
            kills += 1
        ended = finish(client, job["job_id"])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    twice = sum(count > 1 for count in images.counts().values())
    return {"fault": "hashing process killed twice", "kills": kills, "job": ended, "downloaded_twice": twice}


def stopped(images: ImageServer, rows: int, folder: Path) -> dict:
    data_dir = folder / "stopped"
    proc, url = serve(data_dir)
    _, job = Client(url).call("POST", "/imports", catalog(images, 0, rows, "S"), "text/csv")
    wait_done(Client(url), job["job_id"], 40)
    sent = time.perf_counter()
    os.killpg(proc.pid, signal.SIGTERM)
    exit_code = proc.wait(timeout=120)
    exit_s = time.perf_counter() - sent
    proc, url = serve(data_dir)
    try:
        ended = finish(Client(url), job["job_id"])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    twice = sum(count > 1 for count in images.counts().values())
    return {"fault": "SIGTERM to the process group mid-import, then a new start", "exit_s": round(exit_s, 2),
            "exit_code": exit_code, "job": ended, "downloaded_twice": twice}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds each picture is answered late")
    parser.add_argument("--synthetic", action="store_true", help="generated pictures, not the bench photos")
    args = parser.parse_args()
    if args.rows < SMALL_JOB_ROWS:
        parser.error(f"--rows must be {SMALL_JOB_ROWS} or more: a smaller import hashes in its download threads, "
                     "with no hashing process to kill")  # fmt: skip
    images = Images(pictures(args.rows, args.synthetic), args.delay)
    with tempfile.TemporaryDirectory(prefix="fault-bench-") as folder:
        for fault in (killed_twice, stopped):
            with images.lock:  # each fault's downloads counted from its start
                images.hits.clear()
            print(json.dumps(fault(images, args.rows, Path(folder))), flush=True)


if __name__ == "__main__":
    main()
