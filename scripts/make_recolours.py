#!/usr/bin/env python3
"""Synthetic colour variants: one part of a product photo in another colour, the rest untouched.

    python scripts/make_recolours.py --originals DIR --out DIR [--seed N] [--quiet]

writes

    out/<stem>__<way>.jpg   the photo with one part of its product recoloured (JPEG 90)
    out/recolours.csv       variant,sibling,way,part,changed: the file, the original it was made
                            from, how it was recoloured, the part's share of the product and the
                            share of the picture that changed by 30 levels or more

A shop makes a colour variant from one photograph: the same shot with the garment, or a part of
it (a zip, a collar, a cap's crown), in another colour. These are look-alikes made from the
development photos, for measuring how often such a variant is called `duplicate` without
tuning on anyone's real variants; feed them to make_benchmark.py as colour variants:

    python scripts/make_benchmark.py --originals DIR --out BENCH --per-image 0 \
        --colour-variants OUT/recolours.csv OUT

A part is a smooth region of the product (the pixels that differ from the backdrop), bounded by
the steps of its outlines and seams (in hue, or twice as large in brightness: folds and shading
are not), not skin, 3-80% of the product: found at 128 px and
followed at full size to the photo's own edges. Each photo with a
plain backdrop (a scene has none) gets one part, recoloured each way below that changes it
visibly (half its pixels by 30 levels or more): a grey part cannot turn its hue, a white one
cannot be lighter. Every choice is seeded by (seed, file name): the same files every run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from dupcheck.core.matching.arrays import regions

WORK = 128  # px: the side the product's parts are found at
BACKDROP = 24  # levels: a pixel this far from the backdrop's colour (any channel) is the product's
RING_PLAIN = 0.6  # of the outer ring within 12 levels of its median: a plain backdrop
EDGE = 12  # levels between neighbouring pixels at WORK px (any channel): a part's outline
PART = (0.03, 0.80)  # a part's share of the product: a zip up to the whole garment
VISIBLE = 30  # levels: a pixel changed this much is a change a person sees
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _hue_turned(rgb: np.ndarray) -> np.ndarray:
    """A third of the colour wheel on: each pixel's channels rotated about the grey axis."""
    return rgb[..., [2, 0, 1]]


def _lighter(rgb: np.ndarray) -> np.ndarray:
    return 255.0 - (255.0 - rgb) * 0.45


def _darker(rgb: np.ndarray) -> np.ndarray:
    return rgb * 0.45


def _tinted(rgb: np.ndarray) -> np.ndarray:
    """Towards a warm red, the part's light and shade kept (its luma scales the tint)."""
    grey = rgb.mean(axis=-1, keepdims=True)
    return 0.4 * rgb + 0.6 * grey * np.array([1.45, 0.75, 0.7])


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(rgb @ np.array([0.299, 0.587, 0.114]), 3).reshape(rgb.shape)


WAYS = {"hue": _hue_turned, "lighter": _lighter, "darker": _darker, "tint": _tinted, "grey": _grey}


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{seed}\x1f{name}".encode()).digest()[:8], "big"))


def _product(small: np.ndarray) -> np.ndarray | None:
    """The product's pixels at WORK px: those off the backdrop's colour; None for a scene."""
    ring = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    backdrop = np.median(ring, axis=0)
    if (np.abs(ring - backdrop).max(axis=-1) <= 12).mean() < RING_PLAIN:
        return None
    return np.abs(small - backdrop).max(axis=-1) > BACKDROP


def _skin(colour: np.ndarray) -> bool:
    """A cluster the colour of skin (the classic RGB rule of Peer et al.): a face or an arm is not
    a part a shop recolours."""
    r, g, b = colour
    return r > 95 and g > 40 and b > 20 and r - min(g, b) > 15 and r - g > 15 and r > b


def _segments(small: np.ndarray, product: np.ndarray) -> list[np.ndarray]:
    """The product's smooth regions at WORK px: pixels that step less than EDGE to each
    neighbour, connected. A step is a change of hue (red-green, yellow-blue) or a change of
    brightness twice as large: a garment's folds and shading change its brightness more than
    its hue and stay in one region; the seam or outline between two parts is a step."""
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    colour = np.stack([r - g, (r + g) / 2 - b, (r + g + b) / 6], axis=-1)  # brightness at half weight
    step = np.zeros(small.shape[:2])
    across = np.abs(np.diff(colour, axis=1)).max(axis=-1)
    down = np.abs(np.diff(colour, axis=0)).max(axis=-1)
    for first, second, change in ((step[:, :-1], step[:, 1:], across), (step[:-1], step[1:], down)):
        np.maximum(first, change, out=first)  # each pixel's largest step to a neighbour
        np.maximum(second, change, out=second)
    return regions(product & (step <= EDGE))


def find_part(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float] | None:
    """One part of the product at full size (a mask) and its share of the product, or None."""
    height, width = rgb.shape[:2]
    small = np.asarray(Image.fromarray(rgb.astype(np.uint8)).resize((WORK, WORK), Image.BILINEAR), np.float64)
    product = _product(small)
    if product is None or product.sum() < 0.05 * WORK * WORK:
        return None
    parts = [
        region
        for region in _segments(small, product)
        if PART[0] <= len(region) / product.sum() <= PART[1] and not _skin(small[region[:, 0], region[:, 1]].mean(0))
    ]
    if not parts:
        return None
    region = parts[rng.integers(len(parts))]
    cells = np.zeros((WORK, WORK), np.uint8)
    cells[region[:, 0], region[:, 1]] = 255
    # Closed: the steps inside the part (a seam, a print's texture) are the part's too; left out,
    # they would stay in the old colour, speckling it with detail no recolour makes.
    cells = np.asarray(Image.fromarray(cells).filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3)))
    core = np.asarray(Image.fromarray(cells).resize((width, height), Image.NEAREST)) > 0
    around = Image.fromarray(cells).filter(ImageFilter.MaxFilter(5))  # the outline's cells, two each way
    grown = np.asarray(around.resize((width, height), Image.NEAREST)) > 0
    # In the band around the cells, a pixel is the part's when it is nearer the part's colour than
    # the band's: the part's edge is the photo's own, not a staircase of cells.
    inside, band = rgb[core].mean(0), rgb[grown & ~core].mean(0)
    nearer = ((rgb - inside) ** 2).sum(-1) < ((rgb - band) ** 2).sum(-1)
    return core | (grown & nearer), len(region) / float(product.sum())


def recolours(path: Path, seed: int) -> list[tuple[str, Image.Image, float, float]]:
    """(way, picture, part's share of the product, share of the picture changed visibly) for each
    way that changes the photo's part visibly; none for a photo without a part to recolour."""
    with Image.open(path) as im:
        rgb = np.asarray((ImageOps.exif_transpose(im) or im).convert("RGB"), np.float64)
    found = find_part(rgb, _rng(seed, path.name))
    if found is None:
        return []
    part, share = found
    out = []
    for way, recolour in WAYS.items():
        pixels = rgb.copy()
        pixels[part] = np.clip(recolour(rgb[part]), 0, 255)
        changed = np.abs(pixels - rgb).max(axis=-1) >= VISIBLE
        if changed[part].mean() < 0.5:
            continue  # a grey part's hue, a white part lighter: no visible variant
        out.append((way, Image.fromarray(pixels.round().astype(np.uint8)), share, float(changed.mean())))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=Path, required=True, help="folder of product photos")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in args.originals.iterdir() if p.suffix.lower() in SUFFIXES)
    rows = []
    for i, path in enumerate(files, 1):
        for way, picture, share, changed in recolours(path, args.seed):
            name = f"{path.stem}__{way}.jpg"
            picture.save(args.out / name, "JPEG", quality=90)
            rows.append((name, path.name, way, f"{share:.3f}", f"{changed:.4f}"))
        if not args.quiet and i % 50 == 0:
            print(f"make_recolours: {i}/{len(files)} photos, {len(rows)} variants", file=sys.stderr)
    with (args.out / "recolours.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["variant", "sibling", "way", "part", "changed"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} recolours of {len({r[1] for r in rows})} of {len(files)} photos to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
