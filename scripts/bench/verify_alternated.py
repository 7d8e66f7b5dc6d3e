"""Verification of the same queries by several commits, alternated query by query.

hash_bench.py times one commit per process; on a busy machine verification's speed swings
between processes (its matrix products' OpenBLAS threads are not pinned with the process),
more than the difference between commits. Here each commit's code runs in its own worker
process (its `lambdas/` first on the path, pinned to the same core, the same photos indexed as
hash_bench.py indexes them), and the workers judge query i in turn, round after round (the
order reversed every other round): the machine's drift hits every commit alike. Per query, the
median over the rounds; then the median and 90th percentile over queries, and each commit's
90th percentile over the first commit's median (issue 19's latency target, a new product's
p90 against "today's" median).

    git archive <commit> | tar -x -C /tmp/hb-<commit>     # each commit to compare
    .venv/bin/python scripts/bench/verify_alternated.py --kind new --rounds 3 \\
        base=/tmp/hb-804f8a2/lambdas head=lambdas [--images ../shared/bench/images] [--json-out FILE]

BLAS threads: with `--unpinned` the workers run on every core, as the service's processes do
(OpenBLAS then starts a thread per core), and `--one-blas-thread NAME` has that worker call
`dupcheck.bootstrap.one_blas_thread()` first, as the service does since the `latency` branch:

    .venv/bin/python scripts/bench/verify_alternated.py --unpinned --one-blas-thread one \\
        default=/tmp/hb-<commit>/lambdas one=/tmp/hb-<commit>/lambdas
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from scripts.helpers.places import BENCH_IMAGES

SHARED = BENCH_IMAGES


def judging(images: Path) -> tuple[Callable[[bytes], object], Callable[[object], None], dict[str, list[bytes]]]:
    """The judging of one commit's code (whichever `dupcheck` is first on the path), as
    hash_bench.py sets it up: half of the photos of at least 0.7 MP indexed (with their kept
    pictures; a commit without them judges on the views, as its service did), and the queries
    of each kind. Returns (probe: bytes -> the query's fingerprint, judge: a fingerprint's
    candidates searched and judged, the queries by kind)."""
    import io
    import tempfile

    from PIL import Image

    from dupcheck.adapters.local_index import LocalHashIndex
    from dupcheck.core.fingerprint.hashing import get_pipeline
    from dupcheck.core.models import HashRecord

    try:
        from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails

        thumbnails = SqliteThumbnails(Path(tempfile.mkdtemp(prefix="verify-alternated-")) / "thumbnails.sqlite3")
    except ImportError:
        thumbnails = None
    files = [p for p in sorted(images.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
    photos = [p.read_bytes() for p in files if Image.open(p).size[0] * Image.open(p).size[1] >= 700_000][:200]
    pipeline = get_pipeline()
    # A commit that searches parts of the hash on their own (part_hashes) gets its index's parts, as
    # served: declared as `index_parts`, or before that as the first `part_bits`.
    by_part = getattr(pipeline, "part_pool", 0)
    part = {}
    if by_part:
        declared = getattr(pipeline, "index_parts", None)
        part = {"parts": declared} if declared is not None else {"part_bits": pipeline.part_bits}
    index = LocalHashIndex(getattr(pipeline, "index_bits", None) or pipeline.bits, **part)
    records = {}
    for i, data in enumerate(photos[::2]):
        fp = pipeline.fingerprint_bytes(data, max_pixels=40_000_000, for_query=False)
        stored = fp.hash if thumbnails is not None else fp.hash.hex  # (older commits kept hex)
        records[f"E{i}"] = HashRecord(f"E{i}", "", "", stored, fp.algo, features=dict(fp.features))
        index.upsert(records[f"E{i}"])
        if thumbnails is not None and getattr(fp, "thumbnail", None):
            thumbnails.put_many({f"E{i}": fp.thumbnail})

    def cropped(data: bytes) -> bytes:  # hash_bench.cropped_copy: 9% off each side, recompressed
        image = Image.open(io.BytesIO(data)).convert("RGB")
        w, h = image.size
        out = io.BytesIO()
        image.crop((w * 9 // 100, h * 9 // 100, w * 91 // 100, h * 91 // 100)).save(out, "JPEG", quality=70)
        return out.getvalue()

    def turned(data: bytes) -> bytes:  # same_judgements.py's turn4: only the turning lines it up
        image = Image.open(io.BytesIO(data)).convert("RGB")
        out = io.BytesIO()
        image.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)).save(out, "JPEG", quality=85)
        return out.getvalue()

    queries = {
        "new": photos[1::2],
        "copy": [cropped(d) for d in photos[::2]],
        "turned": [turned(d) for d in photos[::2]],
    }
    pool = pipeline.candidate_pool(5)
    judged = judge_of(pipeline)

    def judge(query) -> None:  # noqa: ANN001
        on_part = {"part_hashes": pipeline.part_hashes(query), "part_k": by_part} if by_part else {}
        hits = index.search(query.search_hashes, pool, **on_part)
        candidates = [(records[h.entity_id], h.distance) for h in hits]
        judged(query, candidates, *([thumbnails.get_many] if thumbnails is not None else []))

    def probe(data: bytes) -> object:  # a fresh query: nothing it caches is made yet
        return pipeline.fingerprint_bytes(data, max_pixels=40_000_000)

    return probe, judge, queries


def judge_of(pipeline):  # noqa: ANN001, ANN201
    """One commit's judging of a query's candidates: core/matching's one entry point, or, in a
    commit from before it, the pipeline's own `judge`."""
    if hasattr(pipeline, "judge"):
        return pipeline.judge
    from functools import partial

    from dupcheck.core.matching.judge import judge_candidates

    return partial(judge_candidates, pipeline)


def worker(images: Path, one_blas_thread: bool = False) -> None:
    """One commit's judge (`judging`). Reads `kind index` lines, answers the milliseconds
    `judge` took."""
    import time

    if one_blas_thread:
        from dupcheck.bootstrap import one_blas_thread as limit

        limit()
    probe, judge, queries = judging(images)
    for data in queries["new"][:5]:  # warm caches before timing
        judge(probe(data))
    print("ready", len(queries["new"]), flush=True)  # hash_bench.py's 200 photos: 100 queries
    for line in sys.stdin:
        kind, i = line.split()
        query = probe(queries[kind][int(i)])
        started = time.perf_counter()
        judge(query)
        print(f"{(time.perf_counter() - started) * 1000.0:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="*", help="NAME=LAMBDAS_DIR, the first the baseline")
    parser.add_argument("--kind", choices=("new", "copy", "turned"), default="new",
                        help="held-out photos, 9%% crops, or copies turned 4 degrees")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--unpinned", action="store_true", help="workers on every core (BLAS threads)")
    parser.add_argument("--one-blas-thread", action="append", default=[], metavar="NAME",
                        help="that worker limits BLAS to one thread, as the service does")  # fmt: skip
    parser.add_argument("--json-out", type=Path, metavar="FILE",
                        help="also write the summary, with each name's code, to FILE (scripts/results.py)")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and not args.unpinned:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # inherited by the workers
    if args.worker:
        worker(args.images, bool(args.one_blas_thread))
        return
    if len(args.commits) < 2 or any("=" not in c for c in args.commits):
        parser.error("give at least two NAME=LAMBDAS_DIR")
    names = [c.split("=", 1)[0] for c in args.commits]
    workers = {}
    for spec in args.commits:
        name, lambdas = spec.split("=", 1)
        env = {**os.environ, "PYTHONPATH": str(Path(lambdas).resolve())}
        limit = ["--one-blas-thread", name] if name in args.one_blas_thread else []
        workers[name] = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--images", str(args.images.resolve()), *limit],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd="/",
        )  # fmt: skip
    counts = set()
    for process in workers.values():
        answer = (process.stdout.readline() if process.stdout else "").split()
        if not answer or answer[0] != "ready":
            raise SystemExit("a worker failed to start")
        counts.add(int(answer[1]))
    queries = min(counts)
    samples: dict[str, list[list[float]]] = {name: [[] for _ in range(queries)] for name in names}
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for i in range(queries):
            for name in order:
                process = workers[name]
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write(f"{args.kind} {i}\n")
                process.stdin.flush()
                samples[name][i].append(float(process.stdout.readline()))
    for process in workers.values():
        assert process.stdin is not None
        process.stdin.close()
        process.wait()
    summary = summarise(args.kind, args.rounds, samples)
    for name, figures in summary["results"].items():
        print(f"{name}: {figures}")
    print(json.dumps(summary))
    if args.json_out:  # with the code each name measured (scripts/results.py --record reads either)
        code = dict(spec.split("=", 1) for spec in args.commits)
        args.json_out.write_text(json.dumps({**summary, "code": code}, indent=2) + "\n", encoding="utf-8")


def summarise(kind: str, rounds: int, samples: dict[str, list[list[float]]]) -> dict[str, object]:
    """Per query the median over the rounds; per commit (the first the baseline) the median and
    90th percentile over the queries, and that 90th percentile over the baseline's median."""
    per_query = {name: [statistics.median(s) for s in runs] for name, runs in samples.items()}
    base = statistics.median(next(iter(per_query.values())))
    results = {
        name: {
            "median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(statistics.quantiles(ms, n=10)[-1], 2),
            "p90_to_first_median": round(statistics.quantiles(ms, n=10)[-1] / base, 2),
        }
        for name, ms in per_query.items()
    }
    return {"kind": kind, "rounds": rounds, "results": results}


if __name__ == "__main__":
    main()
