"""The in-process index against faiss, on the query the default pipeline makes, and its memory.

Every figure has its baseline in the same run (these machines are noisy; compare ratios):
1. k-NN as the service calls it: 4 query hashes of 128 bits (the pipeline's search hashes:
   whole and trimmed halves, mirrored, padded), the `candidate_pool` nearest (32), then the
   `part_pool` nearest (4) on each of the codes' `index_parts` (the two 64-bit halves) to the
   distinct halves of those hashes (`part_hashes`), over N stored codes, one thread:
   `LocalHashIndex.search` (ids resolved, as served) against faiss `IndexBinaryFlat.search`
   doing the same searches over the same codes (and the first alone, the search before the
   parts);
2. near duplicates: every code within 8 bits of the query hashes, `LocalHashIndex.within`
   against `IndexBinaryFlat.range_search`;
3. memory held for M records (tracemalloc): the index as served, and with `within`'s tables.

Stored codes are random, except that each query's first hash has a stored copy a few bits
away (so near-duplicate queries find something). The scan costs the same whatever the codes.

    .venv/bin/python scripts/bench/index_bench.py                  # 1M searched, 10M for memory
    .venv/bin/python scripts/bench/index_bench.py --n 100000 --memory 1000000   # a quick run
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc

import faiss
import numpy as np

from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import Fingerprint, HashValue

BITS = 128
RADIUS = 8


def loaded_index(codes: np.ndarray) -> LocalHashIndex:
    parts = get_pipeline().index_parts
    index = LocalHashIndex(BITS, parts=parts, resolve_ids=lambda keys: {k: f"E{k}" for k in keys})
    index.load(zip(range(len(codes)), (c.hex() for c in map(bytes, codes)), strict=True))
    return index


def queries(rng: np.random.Generator, codes: np.ndarray, count: int) -> list[np.ndarray]:
    """Each: a stored code with 0-6 bits flipped, then three random codes (the other search hashes)."""
    found = []
    for _ in range(count):
        near = np.unpackbits(codes[rng.integers(len(codes))].copy())
        flips = rng.choice(BITS, int(rng.integers(0, 7)), replace=False)
        near[flips] ^= 1
        others = rng.integers(0, 256, (3, BITS // 8), dtype=np.uint8)
        found.append(np.vstack([np.packbits(near)[None, :], others]))
    return found


def alternating_ms(first, second, items) -> tuple[float, float]:  # noqa: ANN001 - callables over the items
    """Median ms of each callable over the items, taking turns item by item (after a warm-up)."""
    for item in items[:5]:
        first(item)
        second(item)
    samples: tuple[list[float], list[float]] = ([], [])
    for item in items:
        for run, times in ((first, samples[0]), (second, samples[1])):
            started = time.perf_counter()
            run(item)
            times.append(time.perf_counter() - started)
    return round(statistics.median(samples[0]) * 1000, 3), round(statistics.median(samples[1]) * 1000, 3)


def bench_search(n: int, count: int) -> dict[str, object]:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (n, BITS // 8), dtype=np.uint8)
    index = loaded_index(codes)
    pipeline = get_pipeline()
    flat = faiss.IndexBinaryFlat(BITS)
    flat.add(codes)
    flat_parts = []
    for part in pipeline.index_parts:
        flat_parts.append(faiss.IndexBinaryFlat(part.bits))
        flat_parts[-1].add(np.ascontiguousarray(codes[:, part.start // 8 : part.end // 8]))
    faiss.omp_set_num_threads(1)
    k, part_k = pipeline.candidate_pool(5), pipeline.part_pool
    asked = queries(rng, codes, count)
    as_hashes = [[HashValue(bytes(row)) for row in query] for query in asked]
    parts = [pipeline.part_hashes(Fingerprint(pipeline.algo, hashes[0], tuple(hashes[1:]))) for hashes in as_hashes]
    as_parts = [np.stack([np.frombuffer(h.data, np.uint8) for h in halves]) for halves in parts]
    index.within(as_hashes[0], RADIUS)  # builds the substring tables once, as a first call would

    def served(item: tuple[list[HashValue], tuple[HashValue, ...]]) -> object:
        return index.search(item[0], k, part_hashes=item[1], part_k=part_k)

    def flat_both(item: tuple[np.ndarray, np.ndarray]) -> object:
        return flat.search(item[0], k), [
            flat_part.search(item[1], k + number * part_k) for number, flat_part in enumerate(flat_parts, start=1)
        ]

    # Alternated query by query, so both see the same machine.
    ours, theirs = alternating_ms(
        lambda i: served((as_hashes[i], parts[i])), lambda i: flat_both((asked[i], as_parts[i])), list(range(count))
    )
    whole, whole_flat = alternating_ms(
        lambda i: index.search(as_hashes[i], k), lambda i: flat.search(asked[i], k), list(range(count))
    )
    pairs = list(zip(as_hashes, asked, strict=True))
    near, near_flat = alternating_ms(
        lambda p: index.within(p[0], RADIUS), lambda p: flat.range_search(p[1], RADIUS + 1), pairs
    )
    # Both must find the same thing: the k nearest distances, and every code within the radius.
    for hashes, query in zip(as_hashes[:20], asked[:20], strict=True):
        distances, _ = flat.search(query, k)
        best = np.sort(np.unique(distances.ravel()))
        assert [hit.distance for hit in index.search(hashes, k)][0] == best[0]
        _, _, labels = flat.range_search(query, RADIUS + 1)
        assert {hit.entity_id for hit in index.within(hashes, RADIUS)} == {f"E{label}" for label in labels}
    return {
        "records": n,
        "query": f"{len(asked[0])} hashes of {BITS} bits, k={k}; {len(parts[0])} part hashes, {part_k} more "
        f"on each of {len(flat_parts)} parts",
        "search_ms": ours,
        "faiss_flat_ms": theirs,
        "search_vs_faiss_flat": round(ours / theirs, 2),
        "whole_hash_alone_ms": whole,
        "whole_hash_alone_faiss_flat_ms": whole_flat,
        "within_ms": near,
        "faiss_flat_range_ms": near_flat,
        "within_vs_faiss_flat": round(near / near_flat, 3),
    }


def bench_memory(m: int) -> dict[str, object]:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (m, BITS // 8), dtype=np.uint8)
    rows = [(i, bytes(c).hex()) for i, c in enumerate(codes)]
    del codes
    gc.collect()
    tracemalloc.start()
    index = LocalHashIndex(BITS, parts=get_pipeline().index_parts, resolve_ids=lambda keys: {})
    index.load(iter(rows), version=0)
    del rows
    gc.collect()
    served = tracemalloc.get_traced_memory()[0]
    index.within([HashValue(b"\0" * (BITS // 8))], RADIUS)
    with_tables = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {
        "records": m,
        "index_mb": round(served / 2**20, 1),
        "bytes_per_record": round(served / m, 1),
        "with_within_tables_mb": round(with_tables / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records searched (default 1M)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--memory", type=int, default=10_000_000, help="records for the memory figure (default 10M)")
    args = parser.parse_args()
    result = {"search": bench_search(args.n, args.queries), "memory": bench_memory(args.memory)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
