"""Run a `python -m dupcheck` command as a user would and measure it from outside: wall time,
CPU time (user + system, of the process and its pool processes: a figure other work on the
machine changes less than wall time) and peak RSS of the process and its children, sampled with
psutil every 0.1 s. Shared by the benchmarks of the batch commands (backfill_bench.py,
duplicates_bench.py)."""

from __future__ import annotations

import json
import resource
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any


def run_measured(cmd: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """The command's summary (its last stdout line, JSON) with wall_s, exit_code and peak RSS."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = peak_main = 0
    parent = psutil.Process(proc.pid)
    result: dict[str, str] = {}

    def drain() -> None:
        out, err = proc.communicate()
        result["out"], result["err"] = out, err

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    while reader.is_alive():
        try:
            main = parent.memory_info().rss
            total = main + sum(c.memory_info().rss for c in parent.children(recursive=True))
            peak, peak_main = max(peak, total), max(peak_main, main)
        except psutil.Error:
            pass
        reader.join(0.1)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command's, and its reaped children's
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = result["out"].strip().splitlines()
    if not lines:
        raise RuntimeError(f"{' '.join(cmd[:4])} printed nothing: {result['err'][-2000:]}")
    summary = json.loads(lines[-1])
    summary["wall_s"] = round(wall, 2)
    summary["cpu_s"] = round(cpu, 2)
    summary["exit_code"] = proc.returncode
    summary["peak_rss_mb_total"] = round(peak / 2**20, 1)
    summary["peak_rss_mb_main"] = round(peak_main / 2**20, 1)
    return summary
