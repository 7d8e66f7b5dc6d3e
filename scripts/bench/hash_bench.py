"""Cost of the default hash pipeline and of its verification stage, on one core.

1. Hashing: `pipeline.fingerprint_bytes` on real JPEGs (../shared/bench/images when present,
   else generated 1024x768 ones), median per image, against `imagehash.phash` on a full
   decode of the same bytes measured in the same run.
2. Verification: judging a query against a pool of candidate records (the service's
   `candidate_pool`), median per query, against the query's own fingerprinting.

    .venv/bin/python scripts/bench/hash_bench.py [--images DIR] [--limit 200]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import imagehash
from PIL import Image

from dupcheck.core.hashing import get_pipeline
from dupcheck.core.models import HashRecord
from dupcheck.local.samples import encode, product_image

SHARED = Path(__file__).resolve().parents[3] / "shared" / "bench" / "images"
MAX_PIXELS = 40_000_000


def load_images(folder: Path | None, limit: int) -> tuple[str, list[bytes]]:
    if folder and folder.is_dir():
        # ~1 MP photos, as the target says: the set's larger pictures (at least 0.7 MP).
        files = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
        big = [p for p in files if Image.open(p).size[0] * Image.open(p).size[1] >= 700_000][:limit]
        return f"{folder} (>= 0.7 MP)", [p.read_bytes() for p in big]
    return "generated 1024x768", [encode(product_image(i, (1024, 768))) for i in range(min(limit, 60))]


def per_item_ms(fn, items) -> float:  # noqa: ANN001 - any callable over any items
    samples = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000.0


def baseline(data: bytes) -> None:
    imagehash.phash(Image.open(io.BytesIO(data)).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    source, images = load_images(args.images, args.limit)
    megapixels = statistics.median(
        Image.open(io.BytesIO(d)).size[0] * Image.open(io.BytesIO(d)).size[1] / 1e6 for d in images
    )
    pipeline = get_pipeline()

    def fingerprint(data: bytes):  # noqa: ANN202
        return pipeline.fingerprint_bytes(data, max_pixels=MAX_PIXELS)

    for data in images[:5]:  # warm caches (DCT matrices, imports) before timing
        fingerprint(data)
        baseline(data)
    ours = per_item_ms(fingerprint, images)
    theirs = per_item_ms(baseline, images)

    prints = [fingerprint(d) for d in images]
    records = [
        HashRecord(f"E{i}", "", "", fp.hash.hex, fp.algo, features=dict(fp.features)) for i, fp in enumerate(prints)
    ]
    pool = pipeline.candidate_pool(5)
    candidates = (records * (pool // len(records) + 1))[:pool]

    def verify(query) -> None:  # noqa: ANN001
        for record in candidates:
            pipeline.judge(query, record, 0)

    verify_ms = per_item_ms(verify, prints[:100])
    results = {
        "images": f"{len(images)} from {source}, median {megapixels:.2f} MP",
        "pipeline": pipeline.algo,
        "hash_median_ms": round(ours, 2),
        "imagehash_phash_full_decode_median_ms": round(theirs, 2),
        "ratio_to_baseline": round(ours / theirs, 2),
        "verification_pool": pool,
        "verification_median_ms_per_query": round(verify_ms, 2),
    }
    for name, value in results.items():
        print(f"{name}: {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
