"""Where a record fingerprint's time goes: each step of the default pipeline's record, timed.

The steps of `AlignedDualPHash._fingerprint` for a record (`for_query=False`, what backfill and
registering compute), each timed alone with the thread's CPU time (what other work on the
machine takes does not count), image by image in turn with `imagehash.phash` on a full decode
(the issue's baseline) and the whole record, on one core; medians over the photos, as ratios to
the baseline. The steps add up to about the whole record: what a change to one of them can buy.

    .venv/bin/python scripts/bench/record_stages.py [--images DIR] [--limit 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from dupcheck.core.fingerprint.hashing import _pack, centre_weighted, dct_hash, get_pipeline
from dupcheck.core.pictures.imaging import decode_image
from dupcheck.core.pictures.pixels import crop, luma, planar, trim_box
from dupcheck.core.stored.thumbnails import thumbnail_bytes
from dupcheck.core.stored.views import views_of
from scripts.helpers.places import BENCH_IMAGES

SHARED = BENCH_IMAGES
MAX_PIXELS = 40_000_000


def photos(folder: Path, limit: int) -> list[bytes]:
    """The JPEGs of at least 0.7 MP (hash_bench.py's set)."""
    files = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg")]
    return [p.read_bytes() for p in files if _pixels(p) >= 700_000][:limit]


def _pixels(path: Path) -> int:
    with Image.open(path) as image:
        return image.size[0] * image.size[1]


def stage_times(data: bytes, pipeline: object) -> dict[str, float]:
    """Thread CPU seconds of each step for one photo (the record's steps, in its order)."""
    times: dict[str, float] = {}
    clock = time.thread_time

    def timed(name: str, step: Callable[[], object]) -> object:
        started = clock()
        out = step()
        times[name] = clock() - started
        return out

    timed("imagehash_phash", lambda: imagehash.phash(Image.open(io.BytesIO(data)).convert("RGB")))
    timed("record", lambda: pipeline.fingerprint_bytes(data, max_pixels=MAX_PIXELS, for_query=False))  # type: ignore[attr-defined]
    image = timed("decode", lambda: decode_image(data, max_pixels=MAX_PIXELS, draft_size=256))
    size = pipeline.work_size  # type: ignore[attr-defined]
    timed("working_copy", lambda: image.thumbnail((size, size), Image.Resampling.BILINEAR))  # type: ignore[attr-defined]
    rgb = timed("planar", lambda: planar(np.asarray(image)))
    box = timed("trim", lambda: trim_box(rgb))  # type: ignore[arg-type]

    def weighted() -> tuple[np.ndarray, np.ndarray]:
        gray = luma(rgb)  # type: ignore[arg-type]
        return centre_weighted(gray), centre_weighted(np.ascontiguousarray(crop(gray, box)))  # type: ignore[arg-type]

    whole, cut = timed("luma_and_weights", weighted)  # type: ignore[misc]
    hash_value = timed("dct_hashes", lambda: _pack(np.concatenate([dct_hash(whole), dct_hash(cut)])))
    views = timed("views", lambda: views_of(rgb, box, image))  # type: ignore[arg-type]
    timed("views_encode", lambda: views.encode())  # type: ignore[attr-defined]
    timed("thumbnail_jpeg", lambda: thumbnail_bytes(hash_value, image, box))  # type: ignore[arg-type]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    images = photos(args.images, args.limit)
    pipeline = get_pipeline()
    for data in images[:5]:  # warm caches (DCT matrices, windows, imports)
        stage_times(data, pipeline)
    for round_number in range(1, args.rounds + 1):
        samples: dict[str, list[float]] = {}
        for data in images:
            for name, seconds in stage_times(data, pipeline).items():
                samples.setdefault(name, []).append(seconds)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        baseline = medians.pop("imagehash_phash")
        steps = {name: value for name, value in medians.items() if name != "record"}
        print(json.dumps({
            "round": round_number,
            "images": len(images),
            "imagehash_phash_ms": round(baseline * 1000, 2),
            "record_ratio": round(medians["record"] / baseline, 3),
            "steps_sum_ratio": round(sum(steps.values()) / baseline, 3),
            "step_ratios": {name: round(value / baseline, 3) for name, value in steps.items()},
        }))  # fmt: skip


if __name__ == "__main__":
    main()
