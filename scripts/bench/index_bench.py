"""Benchmark of the in-process index: query latency, memory, and server start-up.

Prints three figures, each with a baseline measured in the same run (these machines are
noisy, so ratios are what compare across runs):
1. exact top-10 over N stored 64-bit hashes on one core, vs a plain numpy full-sort scan;
2. memory held by the index for M hashes, vs the raw hash bytes (8 bytes each);
3. `python -m dupcheck serve` start-up with S records in SQLite until /health answers, vs the
   same start-up on an empty store.

    .venv/bin/python scripts/bench/index_bench.py            # 1M / 10M / 1M, as in docs
    .venv/bin/python scripts/bench/index_bench.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path

import numpy as np

from dupcheck.adapters.local_index import LocalHashIndex, entity_key
from dupcheck.adapters.sqlite_store import SqliteRecordStore
from dupcheck.core.hashing import get_pipeline
from dupcheck.core.models import HashRecord, HashValue

ROOT = Path(__file__).resolve().parents[2]


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64).view(np.uint64) ^ rng.integers(
        0, 2, size=n, dtype=np.uint64
    ) << np.uint64(63)


def hexes(values: np.ndarray) -> list[str]:
    return [f"{v:016x}" for v in values.tolist()]


def loaded_index(values: np.ndarray) -> LocalHashIndex:
    index = LocalHashIndex(64, resolve_ids=lambda keys: {k: str(k) for k in keys})
    index.load(zip(range(len(values)), hexes(values), strict=True))
    return index


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def bench_query(n: int, queries: int) -> dict[str, float]:
    rng = np.random.default_rng(7)
    values = random_hashes(rng, n)
    index = loaded_index(values)
    # Half the queries are near-duplicates of stored hashes (what users send), half random
    # (nothing close: the threshold has to widen furthest).
    flips = rng.integers(0, 64, size=(queries, 3))
    query_values = [
        int(values[rng.integers(n)]) ^ sum(1 << int(b) for b in flips[i])
        if i % 2 == 0
        else int(random_hashes(rng, 1)[0])
        for i in range(queries)
    ]
    ours, plain, plain_stable = [], [], []
    for q in query_values:
        value = HashValue.from_hex(f"{q:016x}")
        started = time.perf_counter()
        hits = index.search([value], 10)
        ours.append(time.perf_counter() - started)

        started = time.perf_counter()
        distances = np.bitwise_count(values ^ np.uint64(q))
        order = np.argsort(distances)[:10]
        plain.append(time.perf_counter() - started)

        started = time.perf_counter()
        np.argsort(np.bitwise_count(values ^ np.uint64(q)), kind="stable")[:10]
        plain_stable.append(time.perf_counter() - started)
        # Both are exact: the k-th distance must agree.
        assert hits[-1].distance == int(distances[order[-1]]), "index disagrees with the full scan"
    return {
        "hashes": n,
        "queries": queries,
        "index_median_ms": round(median_ms(ours), 3),
        "index_p95_ms": round(float(np.percentile(ours, 95)) * 1000.0, 3),
        "fullsort_median_ms": round(median_ms(plain), 3),
        "fullsort_stable_median_ms": round(median_ms(plain_stable), 3),
        "speedup_vs_fullsort": round(median_ms(plain) / median_ms(ours), 1),
        "speedup_vs_fullsort_stable": round(median_ms(plain_stable) / median_ms(ours), 1),
    }


def bench_memory(n: int) -> dict[str, float]:
    rng = np.random.default_rng(11)
    values = random_hashes(rng, n)
    rows = list(zip(range(n), hexes(values), strict=True))
    del values
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = LocalHashIndex(64, resolve_ids=lambda keys: {})
    index.load(rows)
    del rows
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    raw = n * 8
    result = {
        "hashes": n,
        "index_held_mb": round(held / 1e6, 1),
        "raw_hash_bytes_mb": round(raw / 1e6, 1),
        "ratio_to_raw_hashes": round(held / raw, 2),
    }
    assert index.count() == n
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_server_start(data_dir: Path) -> float:
    port = _free_port()
    env = {**os.environ, "DUPCHECK_DATA_DIR": str(data_dir), "DUPCHECK_PORT": str(port)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dupcheck", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    json.loads(response.read())
                    return time.perf_counter() - started
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("server exited during start-up") from None
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_start(n: int) -> dict[str, float]:
    algo = get_pipeline().algo
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        SqliteRecordStore(empty / "dupcheck.sqlite3")
        store = SqliteRecordStore(full / "dupcheck.sqlite3")
        rng = np.random.default_rng(5)
        values = hexes(random_hashes(rng, n))
        store.put_many(
            HashRecord(
                f"E{i:08d}",
                f"SKU{i}",
                f"https://img.example/{i}.jpg",
                HashValue.from_hex(values[i]),
                algo,
                updated_at="2026-01-01T00:00:00.000Z",
            )
            for i in range(n)
        )
        assert store.count() == n and entity_key("E00000000") is not None
        empty_s = min(time_server_start(empty) for _ in range(3))
        full_s = min(time_server_start(full) for _ in range(3))
    return {
        "records": n,
        "start_empty_s": round(empty_s, 2),
        "start_full_s": round(full_s, 2),
        "ratio_full_to_empty": round(full_s / empty_s, 2),
        "load_cost_s": round(full_s - empty_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # "on one core"
    sizes = (50_000, 200_000, 20_000) if args.quick else (1_000_000, 10_000_000, 1_000_000)
    results = {
        "query": bench_query(sizes[0], 200),
        "memory": bench_memory(sizes[1]),
        "start": bench_start(sizes[2]),
    }
    for name, figures in results.items():
        print(f"{name:7s} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
