"""Cost of the default hash pipeline and of its verification stage, on one core.

1. Hashing: `pipeline.fingerprint_bytes` on real JPEGs (../shared/bench/images when present,
   else generated 1024x768 ones), median per image, against `imagehash.phash` on a full
   decode of the same bytes measured in the same run: for a query (every search hash and the
   probe) and for a record (`for_query=False`, what backfill and registering compute), the
   record also without `Views.encode` (the stored form of the views, timed apart). Also timed:
   Pillow's share of a record, the C work its bits are made of (the JPEG decode at draft scale,
   the 160 px thumbnail and the six small resizes of the hashes and views): what no change to
   the Python steps can go below without changing the stored bits.
2. Verification: half the photos are indexed (records and thumbnails, the thumbnails in a
   SqliteThumbnails file as the local service keeps them); each query (a 9% crop of an indexed
   photo, recompressed, or a held-out photo: a new product) is judged against the candidates the
   index returns for it (the service's `candidate_pool`), query by query twice in turn: with the
   look-alike check (the thumbnails of the candidates the views pass are read and looked at,
   core/matching/photograph.py: what the service does) and on the views alone (as before the check).
   Median and 90th percentile per query: look-alikes cost more (their alignment is retried with
   the query turned).

    .venv/bin/python scripts/bench/hash_bench.py [--images DIR] [--limit 200]
        [--screened N --verified N]   # another candidate setting than the default's, to compare
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import imagehash
from PIL import Image

from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.matching.judge import judge_candidates
from dupcheck.core.models import HashRecord
from dupcheck.core.stored.views import Views
from dupcheck_tools.samples import encode, product_image
from scripts.helpers.places import BENCH_IMAGES

SHARED = BENCH_IMAGES
MAX_PIXELS = 40_000_000


def load_images(folder: Path | None, limit: int) -> tuple[str, list[bytes]]:
    if folder and folder.is_dir():
        # ~1 MP photos, as the target says: the set's larger pictures (at least 0.7 MP).
        files = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
        big = [p for p in files if Image.open(p).size[0] * Image.open(p).size[1] >= 700_000][:limit]
        return f"{folder} (>= 0.7 MP)", [p.read_bytes() for p in big]
    return "generated 1024x768", [encode(product_image(i, (1024, 768))) for i in range(min(limit, 60))]


def timings_ms(fn, items) -> list[float]:  # noqa: ANN001 - any callable over any items
    samples = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def interleaved_ms(fns, items) -> list[list[float]]:  # noqa: ANN001
    """Per function, its time on each item; the functions take turns on every item."""
    samples: list[list[float]] = [[] for _ in fns]
    for item in items:
        for fn, out in zip(fns, samples, strict=True):
            started = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - started) * 1000.0)
    return samples


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1]


def cropped_copy(data: bytes) -> bytes:
    """A catalog photo as a shop might re-upload it: 9% cut from each side, recompressed."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    return encode(image.crop((w * 9 // 100, h * 9 // 100, w * 91 // 100, h * 91 // 100)), "JPEG", quality=70)


def baseline(data: bytes) -> None:
    imagehash.phash(Image.open(io.BytesIO(data)).convert("RGB"))


def pillow_share(data: bytes) -> None:
    """The Pillow calls a record's bits come from (two conversions stand in for the luma)."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (256, 256))
    image.thumbnail((160, 160), Image.Resampling.BILINEAR)
    gray, luma = image.convert("L"), image.convert("F")
    for _ in range(2):  # whole and trimmed: the hashes' 32 px, the views' 32 px luma and 16 px colour
        gray.resize((32, 32), Image.Resampling.BILINEAR)
        luma.resize((32, 32), Image.Resampling.BOX)
        image.resize((16, 16), Image.Resampling.BOX)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--screened", type=int, help="candidates aligned coarsely (default: the pipeline's)")
    parser.add_argument("--verified", type=int, help="candidates judged (default: the pipeline's)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    source, images = load_images(args.images, args.limit)
    megapixels = statistics.median(
        Image.open(io.BytesIO(d)).size[0] * Image.open(io.BytesIO(d)).size[1] / 1e6 for d in images
    )
    pipeline = get_pipeline()
    for setting in ("screened", "verified"):
        if getattr(args, setting) is not None:
            setattr(pipeline, setting, getattr(args, setting))

    def fingerprint(data: bytes):  # noqa: ANN202
        return pipeline.fingerprint_bytes(data, max_pixels=MAX_PIXELS)

    def record(data: bytes) -> None:
        pipeline.fingerprint_bytes(data, max_pixels=MAX_PIXELS, for_query=False)

    encode = Views.encode

    def record_without_encode(data: bytes) -> None:
        Views.encode = lambda self: ""  # type: ignore[method-assign]  # swapped, not mocked: ~free
        try:
            record(data)
        finally:
            Views.encode = encode  # type: ignore[method-assign]

    for data in images[:5]:  # warm caches (DCT matrices, imports) before timing
        fingerprint(data)
        record(data)
        baseline(data)
    # Image by image, each way in turn: the machine's drift hits every column alike.
    timed = interleaved_ms([fingerprint, baseline, record, record_without_encode, pillow_share], images)
    ours, theirs, record_ms, bare_ms, pillow_ms = (statistics.median(samples) for samples in timed)

    indexed, held_out = images[::2], images[1::2]
    index = LocalHashIndex(pipeline.index_bits)
    thumbnails = SqliteThumbnails(Path(tempfile.mkdtemp(prefix="hash-bench-")) / "thumbnails.sqlite3")
    records = {}
    for i, data in enumerate(indexed):
        fp = pipeline.fingerprint_bytes(data, max_pixels=MAX_PIXELS, for_query=False)
        records[f"E{i}"] = HashRecord(f"E{i}", "", "", fp.hash, fp.algo, features=dict(fp.features))
        index.upsert(records[f"E{i}"])
        if fp.thumbnail:
            thumbnails.put_many({f"E{i}": fp.thumbnail})
    # Each query twice, one fingerprint for each way: a probe keeps the turns it made.
    copies = [(fingerprint(copy), fingerprint(copy)) for copy in map(cropped_copy, indexed)]
    new_products = [(fingerprint(data), fingerprint(data)) for data in held_out]
    pool = pipeline.candidate_pool(5)

    def judge(queries) -> None:  # noqa: ANN001 - with the look-alike check, as the service judges
        hits = index.search(queries[0].search_hashes, pool)
        judge_candidates(pipeline, queries[0], [(records[h.entity_id], h.distance) for h in hits], thumbnails.get_many)

    def judge_views_only(queries) -> None:  # noqa: ANN001 - as before the check
        hits = index.search(queries[1].search_hashes, pool)
        judge_candidates(pipeline, queries[1], [(records[h.entity_id], h.distance) for h in hits])

    copy_ms, copy_views_ms = interleaved_ms([judge, judge_views_only], copies)
    new_ms, new_views_ms = interleaved_ms([judge, judge_views_only], new_products)
    results = {
        "images": f"{len(images)} from {source}, median {megapixels:.2f} MP",
        "pipeline": pipeline.algo,
        "hash_median_ms": round(ours, 2),
        "imagehash_phash_full_decode_median_ms": round(theirs, 2),
        "ratio_to_baseline": round(ours / theirs, 2),
        "record_hash_median_ms": round(record_ms, 2),
        "record_ratio_to_baseline": round(record_ms / theirs, 2),
        "record_without_views_encode_median_ms": round(bare_ms, 2),
        "record_without_views_encode_ratio_to_baseline": round(bare_ms / theirs, 2),
        "record_pillow_share_median_ms": round(pillow_ms, 2),
        "record_pillow_share_ratio_to_baseline": round(pillow_ms / theirs, 2),
        "verification_pool": pool,
        "verification_judged": getattr(pipeline, "verified", pool),
        "verification_median_ms_copy_query": round(statistics.median(copy_ms), 2),
        "verification_p90_ms_copy_query": round(p90(copy_ms), 2),
        "verification_median_ms_new_product_query": round(statistics.median(new_ms), 2),
        "verification_p90_ms_new_product_query": round(p90(new_ms), 2),
        "verification_mean_ms_copy_query": round(statistics.fmean(copy_ms), 2),
        "verification_mean_ms_new_product_query": round(statistics.fmean(new_ms), 2),
        # The same queries on the views alone (before the look-alike check), in the same run.
        "views_only_median_ms_copy_query": round(statistics.median(copy_views_ms), 2),
        "views_only_p90_ms_copy_query": round(p90(copy_views_ms), 2),
        "views_only_median_ms_new_product_query": round(statistics.median(new_views_ms), 2),
        "views_only_p90_ms_new_product_query": round(p90(new_views_ms), 2),
        "check_p90_new_product_to_views_only_median": round(p90(new_ms) / statistics.median(new_views_ms), 2),
        "check_p90_new_product_to_views_only_p90": round(p90(new_ms) / p90(new_views_ms), 2),
        "check_median_copy_to_views_only_median": round(
            statistics.median(copy_ms) / statistics.median(copy_views_ms), 2
        ),
        "check_p90_copy_to_views_only_p90": round(p90(copy_ms) / p90(copy_views_ms), 2),
        # The machine's speed drifts between runs: verification against the same-run baseline.
        "verification_median_new_product_to_baseline": round(statistics.median(new_ms) / theirs, 2),
    }
    for name, value in results.items():
        print(f"{name}: {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
