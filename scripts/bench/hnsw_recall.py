"""HNSW recall experiment for 64-bit perceptual hashes in Hamming space (faiss IndexBinaryHNSW).

Why: OpenSearch's faiss engine builds an HNSW graph over binary vectors; HNSW is approximate,
and near-duplicate lookup is only useful if the *true* nearest hash is returned. This script
measures, offline and single-threaded, how recall of the true nearest depends on the graph
(m, ef_construction) and the query (ef_search, oversampled k), to choose the defaults in
`adapters/opensearch/schema.py` (recorded in docs/lab/hnsw.md).

Data: N uniformly random 64-bit hashes plus Q queries, each a catalog hash with 0..10 bits
flipped (a planted near-duplicate). Ground truth is an exact flat Hamming scan, so ties and
accidental closer hashes are handled: a query counts as recalled when the returned top-k
contains *an* item at the true minimum distance.

Usage: python scripts/bench/hnsw_recall.py [--n 200000] [--queries 2000] [--seed 7]
Runtime: about a minute on one core (faiss.omp_set_num_threads(1)).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

try:
    import faiss
except ImportError as exc:  # pragma: no cover - a dev-only dependency
    raise SystemExit("faiss is not installed: make venv (faiss-cpu is in the dev group of pyproject.toml)") from exc

BITS = 64
REQUESTED_K = 5  # what the API asks for by default (`top`)
# (m, ef_construction, ef_search, candidates): the defaults of adapters/opensearch/schema.py.
CHOSEN = (32, 128, 128, 50)


def make_data(
    n: int, queries: int, max_flip: int, rng: np.random.Generator, bits_per_hash: int = BITS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    database = rng.integers(0, 256, size=(n, bits_per_hash // 8), dtype=np.uint8)
    sources = rng.choice(n, size=queries, replace=False)
    flips = rng.integers(0, max_flip + 1, size=queries)
    bits = np.unpackbits(database[sources], axis=1)
    for row, count in enumerate(flips):
        positions = rng.choice(bits_per_hash, size=count, replace=False)
        bits[row, positions] ^= 1
    return database, np.packbits(bits, axis=1), flips


def recall(found_dist: np.ndarray, true_min: np.ndarray, k: int) -> float:
    # Recalled when any of the first k results is at the true minimum distance.
    return float(np.mean((found_dist[:, :k] == true_min[:, None]).any(axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--max-flip", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bits", type=int, default=BITS, help="hash bits (128: the default pipeline)")
    args = parser.parse_args()

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    database, queries, flips = make_data(args.n, args.queries, args.max_flip, rng, args.bits)

    flat = faiss.IndexBinaryFlat(args.bits)
    flat.add(database)
    true_dist, _ = flat.search(queries, 1)
    true_min = true_dist[:, 0]
    print(
        f"N={args.n} hashes, {args.queries} queries with 0..{args.max_flip} flipped bits; "
        f"true nearest distance mean {true_min.mean():.2f}, max {true_min.max()}"
    )

    header = f"{'m':>3} {'efC':>4} {'build s':>8} {'ef_search':>9} {'cand k':>6} {'recall@5':>9} {'us/query':>9}"
    print(header)
    print("-" * len(header))
    rows = []
    chosen = None
    for m, ef_construction in ((8, 64), (16, 128), (32, 128)):
        index = faiss.IndexBinaryHNSW(args.bits, m)
        index.hnsw.efConstruction = ef_construction
        start = time.perf_counter()
        index.add(database)
        build = time.perf_counter() - start
        for ef_search in (16, 64, 128, 256):
            for candidates in (REQUESTED_K, 20, 50):
                index.hnsw.efSearch = ef_search
                start = time.perf_counter()
                dist, _ = index.search(queries, candidates)
                per_query = (time.perf_counter() - start) / len(queries) * 1e6
                # The adapter re-sorts candidates by distance and keeps the requested k.
                dist = np.sort(dist, axis=1)
                r = recall(dist, true_min, REQUESTED_K)
                rows.append((m, ef_construction, build, ef_search, candidates, r, per_query))
                print(
                    f"{m:>3} {ef_construction:>4} {build:>8.1f} {ef_search:>9} {candidates:>6} "
                    f"{r:>9.4f} {per_query:>9.1f}"
                )
        if (m, ef_construction) == CHOSEN[:2]:
            chosen = index

    # Recall by planted distance for the chosen defaults (the adapter's DEFAULT_* constants).
    assert chosen is not None
    m, ef_construction, ef_search, candidates = CHOSEN
    chosen.hnsw.efSearch = ef_search
    dist, _ = chosen.search(queries, candidates)
    hit = (np.sort(dist, axis=1)[:, :REQUESTED_K] == true_min[:, None]).any(axis=1)
    print(
        f"\nchosen defaults (m={m}, efC={ef_construction}, ef_search={ef_search}, "
        f"{candidates} candidates): recall by flipped bits"
    )
    for d in range(args.max_flip + 1):
        mask = flips == d
        if mask.any():
            print(f"  d={d:>2}: {hit[mask].mean():.4f} ({mask.sum()} queries)")


if __name__ == "__main__":
    main()
