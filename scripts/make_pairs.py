#!/usr/bin/env python3
"""One pair, one judgement: the same photograph stored and asked in every order.

    python scripts/make_pairs.py --originals DIR --out DIR [--seed N] [--limit N]

writes

    out/pictures/<stem>__<kind>.<ext>   each original as it is (kind `original`) and its copies:
                                        make_benchmark.py's crop_small, crop_large, pad_square,
                                        mirror, rotate, grayscale, watermark (text) and badge,
                                        a smaller copy (`resize`) and a frame, and two crops from
                                        different sides (`cut_side`: 4-20% off the left or right;
                                        `cut_end`: 4-20% off the top or bottom), which share at
                                        least 80% of each
    out/rounds.csv                      round,role,picture: which pictures each round's catalog
                                        stores (role `stored`) and which it asks (`asked`)
    out/edits.jsonl                     {"picture", "edits"}: what made each copy, in order

The evaluate-duplicates benchmark asks one question: the catalog holds an original, is an edited
copy of it found? A shop's catalog is not built that way: the picture that came first is as
often the edited one, a catalog holds one photograph several times, two sellers crop one photo
from different sides. The rounds ask those questions (`python -m dupcheck evaluate-pairs`):

    pairs-a, pairs-b   each photo's catalog picture is one of PAIR_KINDS (round a: A, round b: B,
                       the pair (A, B) cycling over every two kinds); the original, the other one
                       of the pair and ASKED_MORE kinds more are asked: an original after its copy,
                       copy against copy, and the pair (A, B) both ways
    crops-a, crops-b   the catalog holds each photo's cut_side (a) or cut_end (b), the other asked
    thrice             the catalog holds each photo three times (the original, a smaller copy, a
                       padded square); THRICE_ASKED kinds of it asked, cycling

Every random choice comes from a generator seeded with (seed, file name, kind): the same files,
byte for byte, every run (make_benchmark.py's transforms and encodings).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
from pathlib import Path
from typing import Any

from PIL import Image

from scripts import make_benchmark

PAIR_KINDS = ("original", "crop_small", "crop_large", "pad_square", "mirror", "rotate", "grayscale", "watermark",
              "badge")  # fmt: skip
CUT_KINDS = ("cut_side", "cut_end")
THRICE_STORED = ("original", "resize", "pad_square")
THRICE_ASKED = ("crop_small", "crop_large", "mirror", "rotate", "grayscale", "watermark", "badge", "frame")
KINDS = (*PAIR_KINDS, "resize", "frame", *CUT_KINDS)
ASKED_MORE = 3  # kinds asked in a pairs round besides the original and the pair's other one
THRICE_EACH = 4  # kinds of each photo asked against the catalog that holds it three times
CUT = (0.04, 0.20)  # share of a side a cut takes: two cuts from different sides share >= 80% of each
ROUNDS = ("pairs-a", "pairs-b", "crops-a", "crops-b", "thrice")


def cut(image: Image.Image, rng: Any, log: list[dict[str, Any]], *, across: bool) -> Image.Image:
    """A crop of CUT off one side: the left or right (`across`), else the top or bottom."""
    width, height = image.size
    share = rng.uniform(*CUT)
    first = rng.random() < 0.5
    sides = ("left", "right") if across else ("top", "bottom")
    side = sides[0] if first else sides[1]
    pixels = round((width if across else height) * share)
    box = {
        "left": (pixels, 0, width, height), "right": (0, 0, width - pixels, height),
        "top": (0, pixels, width, height), "bottom": (0, 0, width, height - pixels),
    }[side]  # fmt: skip
    shares = {name: 0.0 for name in ("left", "right", "top", "bottom")}
    shares[side] = round(pixels / (width if across else height), 4)
    log.append({"edit": "crop", **shares})
    return image.crop(box)


def picture(image: Image.Image, kind: str, seed: int, name: str) -> tuple[bytes, str, list[dict[str, Any]]]:
    """A kind of copy of `image` (the original's bytes are copied, not made here)."""
    if kind in CUT_KINDS:
        rng = make_benchmark._rng(seed, name, kind)
        log: list[dict[str, Any]] = []
        out = cut(image, rng, log, across=kind == "cut_side")
        buffer = io.BytesIO()
        quality = rng.randint(75, 92)
        out.save(buffer, "JPEG", quality=quality)
        log.append({"edit": "encode", "format": "jpeg", "quality": quality})
        return buffer.getvalue(), ".jpg", log
    return make_benchmark.make_query(image, kind, seed, name)


def rounds(stems: list[str], seed: int) -> list[tuple[str, str, str]]:
    """(round, role, picture stem) of every round: see the module's docstring."""
    pairs = list(itertools.combinations(PAIR_KINDS, 2))
    order = make_benchmark._rng(seed, "pairs")
    order.shuffle(pairs)
    rows: list[tuple[str, str, str]] = []
    for n, stem in enumerate(stems):
        first, second = pairs[n % len(pairs)]
        others = [k for k in PAIR_KINDS if k not in ("original", first, second)]
        for round_name, stored, partner in (("pairs-a", first, second), ("pairs-b", second, first)):
            more = [others[(n + i) % len(others)] for i in range(ASKED_MORE)]
            asked = dict.fromkeys(k for k in ("original", partner, *more) if k != stored)
            rows.append((round_name, "stored", f"{stem}__{stored}"))
            rows.extend((round_name, "asked", f"{stem}__{kind}") for kind in asked)
        rows += [("crops-a", "stored", f"{stem}__cut_side"), ("crops-a", "asked", f"{stem}__cut_end"),
                 ("crops-b", "stored", f"{stem}__cut_end"), ("crops-b", "asked", f"{stem}__cut_side")]  # fmt: skip
        rows.extend(("thrice", "stored", f"{stem}__{kind}") for kind in THRICE_STORED)
        rows.extend(("thrice", "asked", f"{stem}__{THRICE_ASKED[(n + i) % len(THRICE_ASKED)]}")
                    for i in range(THRICE_EACH))  # fmt: skip
    return rows


def build(originals: Path, out: Path, *, seed: int = 1, limit: int | None = None) -> dict[str, int]:
    paths = make_benchmark.list_images(originals)[:limit]
    if not paths:
        raise SystemExit(f"no pictures in {originals}")
    folder = out / "pictures"
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    with (out / "edits.jsonl").open("w", encoding="utf-8") as edits:
        for path in make_benchmark._progress(paths, True):
            image = make_benchmark._load(path)
            for kind in KINDS:
                stem = f"{path.stem}__{kind}"
                if kind == "original":
                    data, suffix, log = path.read_bytes(), path.suffix.lower(), []
                else:
                    data, suffix, log = picture(image, kind, seed, path.name)
                (folder / f"{stem}{suffix}").write_bytes(data)
                files[stem] = f"{stem}{suffix}"
                edits.write(json.dumps({"picture": files[stem], "edits": log}) + "\n")
    plan = rounds([p.stem for p in paths], seed)
    with (out / "rounds.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("round", "role", "picture"))
        writer.writerows((name, role, files[stem]) for name, role, stem in plan)
    return {name: sum(1 for r, role, _ in plan if r == name and role == "asked") for name in ROUNDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=Path, required=True, help="folder of original pictures")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the benchmark to")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="only the first N originals (by name)")
    args = parser.parse_args(argv)
    asked = build(args.originals, args.out, seed=args.seed, limit=args.limit)
    print(f"wrote {args.out}: pictures asked per round {asked}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
