#!/usr/bin/env python3
"""Stress sets: every catalog picture edited the hard way, for measuring one step of the judging.

    python scripts/make_stress.py --catalog DIR --out DIR --kind KIND [--per-image N] [--seed N]

writes

    out/queries/<stem>__<kind><k>.<ext>  the edited copies of each catalog picture
    out/truth.csv                        query,expected,kind,source (kind `rotate`, or the benchmark kind)
    out/edits.jsonl                      {"query", "edits": [...]}: what was done, as make_benchmark.py logs it

The benchmark (make_benchmark.py) gives each picture 6 of its 18 kinds of edit, so a kind has a
copy of one picture in three; these give every picture the kind that a step of the judging is
hard on:

    turned  each picture turned 3-5 degrees each way (`__turn+`, `__turn-`), on a white fill,
            with or without `expand` (half each), JPEG 90: where the views line up only once
            the query is turned back (the benchmark turns 1-5 degrees; most of its copies line
            up upright)
    turned-padded
            each picture turned 1-2.5 degrees on a black or white fill with `expand`, then
            padded 3-15% a side in white or black (`__turnpad`), JPEG 90: a small turn's fill is
            a wedge a few pixels wide at the judging's 160 px, inside padding that hides it from
            the whole picture's borders
    combo   --per-image (default 3) of make_benchmark.py's combinations of 2-3 edits each
            (padding, a frame, a badge, text, a turn, a crop, tone...), encoded as it encodes
    any other kind of make_benchmark.py's (crop_large, thumbnail, watermark...)
            --per-image copies of it, made and encoded as the benchmark makes them: a kind it
            asks about 20-60 times a part, asked about for every picture

Evaluate them against the same catalog:

    python -m dupcheck evaluate --catalog DIR --queries OUT/queries --truth OUT/truth.csv --out RESULTS

Every choice comes from a generator seeded with (seed, file name, copy): the same files on any
machine with the same Pillow.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageOps

from scripts import make_benchmark

JPEG_90 = {"edit": "encode", "format": "jpeg", "quality": 90}


def turned(image: Image.Image, rng: random.Random, sign: int, log: list[dict]) -> Image.Image:
    angle = sign * rng.uniform(3.0, 5.0)
    expand = rng.random() < 0.5
    log.append({"edit": "rotate", "degrees": round(angle, 2), "expand": expand, "fill": "white"})
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=expand, fillcolor=(255, 255, 255))


def turned_padded(image: Image.Image, rng: random.Random, log: list[dict]) -> Image.Image:
    angle = rng.choice((-1, 1)) * rng.uniform(1.0, 2.5)
    fill = rng.choice(("black", "white"))
    pad = rng.choice(("black", "white"))
    log.append({"edit": "rotate", "degrees": round(angle, 2), "expand": True, "fill": fill})
    turned = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    w, h = turned.size
    left, right = (round(w * rng.uniform(0.03, 0.15)) for _ in range(2))
    top, bottom = (round(h * rng.uniform(0.03, 0.15)) for _ in range(2))
    width, height = w + left + right, h + top + bottom
    log.append({"edit": "pad", "left": round(left / width, 4), "right": round(right / width, 4),
                "top": round(top / height, 4), "bottom": round(bottom / height, 4)})  # fmt: skip
    return ImageOps.expand(turned, border=(left, top, right, bottom), fill=pad)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def copies(image: Image.Image, name: str, kind: str, per_image: int, seed: int) -> list[tuple[str, bytes, list]]:
    """(suffix of the query's name, its bytes, its edits) for each copy of one picture."""
    out = []
    if kind == "turned":
        for sign, mark in ((1, "+"), (-1, "-")):
            log: list[dict] = []
            copy = turned(image, random.Random(f"{seed}:{name}:{mark}"), sign, log)
            out.append((f"turn{mark}.jpg", _jpeg(copy), [*log, JPEG_90]))
        return out
    if kind == "turned-padded":
        log = []
        copy = turned_padded(image, random.Random(f"{seed}:{name}:turnpad"), log)
        return [("turnpad.jpg", _jpeg(copy), [*log, JPEG_90])]
    for k in range(per_image):
        rng, log = random.Random(f"{seed}:{name}:{kind}{k}"), []
        data, suffix = make_benchmark._encode(make_benchmark.TRANSFORMS[kind](image, rng, log), kind, rng, log)
        out.append((f"{kind}{k}{suffix}", data, log))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True, help="folder of catalog pictures")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kind", choices=("turned", "turned-padded", *make_benchmark.POSITIVE_KINDS), required=True)
    parser.add_argument("--per-image", type=int, default=3, help="copies per picture of a benchmark kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.per_image < 1:
        parser.error("--per-image must be at least 1")
    queries = args.out / "queries"
    queries.mkdir(parents=True, exist_ok=True)
    rows, edits = [], []
    truth_kind = "rotate" if args.kind in ("turned", "turned-padded") else args.kind
    for path in make_benchmark.list_images(args.catalog):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        for suffix, data, log in copies(image, path.name, args.kind, args.per_image, args.seed):
            name = f"{path.stem}__{suffix}"
            (queries / name).write_bytes(data)
            rows.append((name, path.stem, truth_kind, path.stem))
            edits.append({"query": name, "edits": log})
    with (args.out / "truth.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["query", "expected", "kind", "source"])
        writer.writerows(rows)
    with (args.out / make_benchmark.EDITS_FILE).open("w") as fh:
        fh.writelines(json.dumps(edit) + "\n" for edit in edits)
    print(f"wrote {len(rows)} {args.kind} copies of {len({r[1] for r in rows})} pictures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
