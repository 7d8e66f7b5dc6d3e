"""Which records of a photograph a copy's search returns, by the parts the index searches on their
own and how many each adds; and what the parts cost a search.

The catalog holds each dev photo (docs/lab/lockbox-split.json) three times, as a shop may: the
original, a half-size copy (JPEG 90) and a padded square (make_benchmark.py's `pad_square`). Each
photo is asked about by four edited copies (`crop_large`, `rotate`, `grayscale`, `badge`, seed 1),
searched as the service does (`LocalHashIndex.search` with the query's hashes,
`candidate_pool(5)` nearest, `part_hashes`, `part_k`), for each way of adding candidates by
part (`WAYS`: none, the whole-picture half alone as before, both halves). A case is one record of
the asked photograph; it is missed when the search does not return it. The judge screens
`policy.screened + policy.by_part` (40) candidates: a way that returns more shows it.

Then the cost: a new product's search (a query whose photo is not in the catalog: the dev photos'
queries, over random codes) at `--records` records, each way's `LocalHashIndex.search` taking
turns query by query with the whole-picture half alone (one thread), as a ratio in one run.

    .venv/bin/python scripts/bench/parts_bench.py [--images ../shared/bench/images] [--records 100000]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.bootstrap import one_blas_thread
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashRecord, HashValue
from scripts.helpers.places import BENCH_IMAGES
from scripts.make_benchmark import make_query

ROOT = Path(__file__).resolve().parents[2]

SPLIT = ROOT / "docs" / "lab" / "lockbox-split.json"
SEED = 1
MAX_PIXELS = 40_000_000
STORED = ("original", "half", "padded")
ASKED = ("crop_large", "rotate", "grayscale", "badge")
# (parts searched on their own, by name; candidates each adds): what each way returns.
WAYS: dict[str, tuple[tuple[str, ...], int]] = {
    "none": ((), 0),
    "whole half, 8": (("whole",), 8),
    "both halves, 4 each": (("whole", "trimmed"), 4),
    "both halves, 8 each": (("whole", "trimmed"), 8),
}
BASELINE = "whole half, 8"


def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def fingerprints(images: Path, stems: list[str]) -> tuple[list[HashRecord], dict[tuple[str, str], list[HashValue]]]:
    """The catalog's records (entity id `stem/stored`) and each copy's search hashes."""
    pipeline = get_pipeline()
    records, queries = [], {}
    for stem in stems:
        path = images / f"{stem}.jpg"
        picture = load(path)
        half = picture.resize((max(8, picture.width // 2), max(8, picture.height // 2)), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        half.save(buffer, "JPEG", quality=90)
        padded = make_query(picture, "pad_square", SEED, path.name)[0]
        for name, data in zip(STORED, (path.read_bytes(), buffer.getvalue(), padded), strict=True):
            made = pipeline.fingerprint_bytes(data, max_pixels=MAX_PIXELS, for_query=False)
            records.append(HashRecord(f"{stem}/{name}", "", "", made.hash, made.algo))
        for kind in ASKED:
            asked = pipeline.fingerprint_bytes(make_query(picture, kind, SEED, path.name)[0], max_pixels=MAX_PIXELS)
            queries[(stem, kind)] = list(asked.search_hashes)
    return records, queries


def index_for(way: str) -> LocalHashIndex:
    pipeline = get_pipeline()
    names, _ = WAYS[way]
    parts = tuple(part for name in names for part in pipeline.index_parts if part.name == name)
    return LocalHashIndex(pipeline.index_bits, parts=parts)


def search(index: LocalHashIndex, way: str, hashes: list[HashValue]) -> list[str]:
    pipeline = get_pipeline()
    halves = tuple(dict.fromkeys(half for value in hashes for half in value.parts(2)))
    hits = index.search(hashes, pipeline.candidate_pool(5), part_hashes=halves, part_k=WAYS[way][1])
    return [hit.entity_id for hit in hits]


def recall(records: list[HashRecord], queries: dict[tuple[str, str], list[HashValue]]) -> dict[str, Any]:
    """Per way: cases missed, by record stored and by copy asked, and the candidates returned."""
    out: dict[str, Any] = {}
    cases = len(queries) * len(STORED)
    for way in WAYS:
        index = index_for(way)
        index.upsert_many(records)
        missed: Counter[tuple[str, str]] = Counter()
        returned = []
        for (stem, kind), hashes in queries.items():
            found = search(index, way, hashes)
            returned.append(len(found))
            for name in STORED:
                missed[(kind, name)] += f"{stem}/{name}" not in found
        out[way] = {
            "missed": sum(missed.values()),
            "of": cases,
            "by_stored": {name: sum(missed[(k, name)] for k in ASKED) for name in STORED},
            "by_asked": {kind: sum(missed[(kind, n)] for n in STORED) for kind in ASKED},
            "padded_by_asked": {kind: missed[(kind, "padded")] for kind in ASKED},
            "candidates": max(returned),
        }
    return out


def cost(queries: list[list[HashValue]], records: int) -> dict[str, Any]:
    """Median ms of a new product's search by each way, taking turns with BASELINE query by query."""
    codes = np.random.default_rng(5).integers(0, 256, (records, get_pipeline().index_bits // 8), dtype=np.uint8)
    indexes = {}
    for way in WAYS:
        indexes[way] = index_for(way)
        indexes[way].load_codes(np.arange(records), codes)
    out: dict[str, Any] = {"records": records, "queries": len(queries)}
    for way in WAYS:
        if way == BASELINE:
            continue
        samples: dict[str, list[float]] = {way: [], BASELINE: []}
        for hashes in queries[:5] + queries:  # the first five warm up, then count
            for name in (way, BASELINE):
                started = time.perf_counter()
                search(indexes[name], name, hashes)
                samples[name].append(time.perf_counter() - started)
        mine, theirs = (statistics.median(samples[name][5:]) * 1000 for name in (way, BASELINE))
        out[way] = {"ms": round(mine, 3), "baseline_ms": round(theirs, 3), "ratio": round(mine / theirs, 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=BENCH_IMAGES)
    parser.add_argument("--records", type=int, default=100_000, help="records a new product's search scans")
    parser.add_argument("--limit", type=int, help="only the first dev photos (a quick run)")
    args = parser.parse_args()
    one_blas_thread()
    stems = json.loads(SPLIT.read_text())["dev"][: args.limit]
    records, queries = fingerprints(args.images, stems)
    result = {
        "photos": len(stems),
        "stored": list(STORED),
        "asked": list(ASKED),
        "recall": recall(records, queries),
        "search_cost": cost(list(queries.values()), args.records),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
