#!/usr/bin/env python3
"""Similar products' costs, each beside a baseline measured in the same run:

* per picture, on one core: the product vector (decode, square, model; `Embedder.embed_bytes`)
  beside the fingerprint registering computes anyway (`build_entry` without it), on real photos;
* search at N records (default 1M) in the local index (`LocalProductIndex`, from its SQLite file)
  beside an exact int8 scan of the same vectors, and how many of the exact 5 nearest it finds;
  its load time, memory and bytes a record on disk;
* the duplicate check (`find_similar_bytes`) with similar products on and off, taken in turn.

    flock /tmp/heavy.lock .venv/bin/python scripts/bench/products_bench.py --pictures ../shared/bench/images

The N vectors are the pictures' own vectors with noise (a catalog of many looks of few products:
thousands of near ties per query, harder than a real catalog's spread).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dupcheck.adapters.local_products import LocalProductIndex
from dupcheck.bootstrap import build_embedder, build_service, one_blas_thread
from dupcheck.core.catalog.records import build_entry
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import DIMENSIONS, ProductVector
from dupcheck.core.settings import Settings

MAX_PIXELS = 40_000_000


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024  # type: ignore[union-attr]


def per_picture(pictures: list[bytes]) -> dict[str, float]:
    embedder = build_embedder(Settings.from_env({}, products="on"))
    assert embedder is not None
    pipeline = get_pipeline()
    fingerprint, embedding = [], []
    for i, data in enumerate(pictures * 2):  # the first pass warms both up
        started = time.perf_counter()
        build_entry(pipeline, data, entity_id=f"p{i}", sku="", image_url="https://shop.example/p.jpg",
                    max_pixels=MAX_PIXELS)  # fmt: skip
        middle = time.perf_counter()
        embedder.embed_bytes(data, max_pixels=MAX_PIXELS)
        done = time.perf_counter()
        if i >= len(pictures):
            fingerprint.append(middle - started)
            embedding.append(done - middle)
    f, e = statistics.median(fingerprint) * 1000, statistics.median(embedding) * 1000
    return {"pictures": len(pictures), "fingerprint_ms": round(f, 1), "embedding_ms": round(e, 1),
            "embedding_p95_ms": round(float(np.percentile(embedding, 95)) * 1000, 1),
            "embedding_to_fingerprint": round(e / f, 2)}  # fmt: skip


def search(pictures: list[bytes], n: int, queries: int = 200) -> dict[str, object]:
    embedder = build_embedder(Settings.from_env({}, products="on"))
    assert embedder is not None
    seeds = np.stack([embedder.embed_bytes(d, max_pixels=MAX_PIXELS).values() for d in pictures]) / 254.0
    rng = np.random.default_rng(0)

    def noisy(count: int) -> np.ndarray:
        vectors = seeds[rng.integers(0, len(seeds), count)] + rng.normal(0, 0.045, (count, DIMENSIONS))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.clip(np.rint(vectors * 254), -127, 127).astype(np.int8)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "products.sqlite3"
        writer = LocalProductIndex(path)
        all_vectors = np.zeros((n, DIMENSIONS), dtype=np.int8)
        started = time.perf_counter()
        for start in range(0, n, 10_000):
            part = noisy(min(10_000, n - start))
            all_vectors[start : start + len(part)] = part
            writer.put_many({f"r{start + i}": ProductVector(v.tobytes()) for i, v in enumerate(part)})
        written = time.perf_counter() - started
        index = LocalProductIndex(path)  # a server starting: loads the file
        before = rss_mb()
        started = time.perf_counter()
        index.warm()
        loaded = time.perf_counter() - started
        memory = rss_mb() - before  # with the SQLite file's pages read through its memory map
        arrays = index.nbytes / 1e6
        bytes_per_record = path.stat().st_size / n
        query_vectors = noisy(queries)
        exact_ms, index_ms, found = [], [], 0
        wide = all_vectors.astype(np.float32)  # the baseline's own copy, made before timing it
        for q in query_vectors:
            started = time.perf_counter()
            exact = np.argpartition(-(wide @ q.astype(np.float32)), 5)[:5]
            exact_ms.append(time.perf_counter() - started)
            started = time.perf_counter()
            hits = index.search(ProductVector(q.tobytes()), 5)
            index_ms.append(time.perf_counter() - started)
            found += len({f"r{i}" for i in exact.tolist()} & {h.entity_id for h in hits})
    return {
        "records": n, "write_s": round(written, 1), "load_s": round(loaded, 1), "rss_growth_mb": round(memory),
        "index_arrays_mb": round(arrays),
        "file_bytes_per_record": round(bytes_per_record),
        "search_ms_median": round(statistics.median(index_ms) * 1000, 2),
        "search_ms_p95": round(float(np.percentile(index_ms, 95)) * 1000, 2),
        "exact_scan_ms_median": round(statistics.median(exact_ms) * 1000, 2),
        "search_to_exact_scan": round(statistics.median(index_ms) / statistics.median(exact_ms), 3),
        "recall_at_5_vs_exact": round(found / (5 * len(query_vectors)), 3),
    }  # fmt: skip


def duplicate_check(pictures: list[bytes]) -> dict[str, float]:
    """find_similar with similar products on and off: the same path, taken in turn."""
    services = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("on", "off"):
            service = build_service(Settings.from_env({}, data_dir=Path(folder) / mode, products=mode))
            for i, data in enumerate(pictures):
                service.registrar.register_bytes(
                    entity_id=f"p{i}", sku="", image_url=f"https://shop.example/{i}.jpg", data=data
                )
            services[mode] = service
        timings: dict[str, list[float]] = {"on": [], "off": []}
        for data in pictures:
            for mode, service in services.items():
                started = time.perf_counter()
                service.lookups.find_similar_bytes(data, 5)
                timings[mode].append(time.perf_counter() - started)
    on, off = (statistics.median(timings[m]) * 1000 for m in ("on", "off"))
    return {"find_ms_products_on": round(on, 2), "find_ms_products_off": round(off, 2), "on_to_off": round(on / off, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pictures", type=Path, required=True, help="a folder of photos (../shared/bench/images)")
    parser.add_argument("--count", type=int, default=120, help="photos timed (default 120)")
    parser.add_argument("--records", type=int, default=1_000_000, help="vectors in the searched index")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as on Lambda at 1,769 MB
    one_blas_thread()
    files = sorted(p for p in args.pictures.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    pictures = [p.read_bytes() for p in files[: args.count]]
    results = {"per_picture": per_picture(pictures), "duplicate_check": duplicate_check(pictures[:60])}
    results["search"] = search([p.read_bytes() for p in files], args.records)
    for name, figures in results.items():
        print(f"{name}: {figures}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
