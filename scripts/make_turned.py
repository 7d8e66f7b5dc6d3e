#!/usr/bin/env python3
"""Turned copies: every catalog picture turned 3-5 degrees each way, for measuring the turning.

    python scripts/make_turned.py --catalog DIR --out DIR [--seed N]

writes

    out/queries/<stem>__turn+.jpg  the picture turned anticlockwise (and __turn-: clockwise) by
                                   3-5 degrees, on a white fill, with or without `expand` (half
                                   each), JPEG 90, as make_benchmark.py's rotate edit turns
    out/truth.csv                  query,expected,kind,source (kind `rotate`)

The benchmark's rotate edit turns 1-5 degrees, and most of its copies line up upright; these
turn every picture by 3 degrees or more, where the views line up only once the query is turned
back. Evaluate them against the same catalog:

    python -m dupcheck evaluate --catalog DIR --queries OUT/queries --truth OUT/truth.csv --out RESULTS

Every choice comes from a generator seeded with (seed, file name, direction): the same files on
any machine with the same Pillow.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def turned(image: Image.Image, rng: random.Random, sign: int) -> Image.Image:
    angle = sign * rng.uniform(3.0, 5.0)
    expand = rng.random() < 0.5
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=expand, fillcolor=(255, 255, 255))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True, help="folder of catalog pictures")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    queries = args.out / "queries"
    queries.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(p for p in args.catalog.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        for sign, mark in ((1, "+"), (-1, "-")):
            name = f"{path.stem}__turn{mark}.jpg"
            turned(image, random.Random(f"{args.seed}:{path.name}:{mark}"), sign).save(queries / name, quality=90)
            rows.append((name, path.stem, "rotate", path.stem))
    with (args.out / "truth.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "expected", "kind", "source"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} turned copies of {len(rows) // 2} pictures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
