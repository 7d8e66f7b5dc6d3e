#!/usr/bin/env python3
"""Synthetic colour variants: one part of a product photo in another colour, the rest untouched.

    python scripts/make_recolours.py --originals DIR --out DIR [--faint] [--seed N] [--quiet]

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

A part starts as a smooth region of the product (the pixels that differ from the backdrop),
bounded by the steps of its outlines and seams (in hue, or twice as large in brightness: folds
and shading are not), not skin, 3-80% of the product; it takes in what lies beyond a fold in
the same colour under other light, as a shop's selection would. It is found at 128 px and
followed at full size to the photo's own outline, its edge softened a pixel inward: no cell
staircase, no fleck of the old colour left along it. Each photo with a plain backdrop (a scene
has none) gets one part, recoloured each way below that changes it visibly (half its pixels by
30 levels or more): a grey part cannot turn its hue, a white one cannot be lighter. With
`--faint`, the ways a shop's near twin is made instead (a green stripe faded towards grey, a
shade deeper, a hue a little warmer): half the part's pixels changed by 8 levels or more, which
side by side a person sees, and most of them by less than 30. A way is
left out, too, when the part is all the colour the photo has: the same way applied to the whole
picture would make the same picture (a lone red tee on white, greyed, is the grayscale photo),
an edit of one photograph and no colour variant. Every choice is seeded by (seed, file name):
the same files every run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from dupcheck.core.pictures.arrays import regions
from dupcheck.core.pictures.pixels import skin_coloured

WORK = 128  # px: the side the product's parts are found at
BACKDROP = 24  # levels: a pixel this far from the backdrop's colour (any channel) is the product's
RING_PLAIN = 0.6  # of the outer ring within 12 levels of its median: a plain backdrop
EDGE = 12  # levels between neighbouring pixels at WORK px (any channel): a part's outline
PART = (0.03, 0.80)  # a part's share of the product: a zip up to the whole garment
SAME_HUE = 20.0  # degrees: a region in the part's colour, under other light
COLOURFUL = 0.2  # saturation: below it a colour has no hue to compare (a grey, a white)
FLECK = 5  # px: a band pixel goes with most of the FLECK x FLECK around it (a heather's flecks)
SHADE = 2.0  # brighter or darker by this factor at most: a garment's shading, not another one
VISIBLE = 30  # levels: a pixel changed this much is a change a person sees
WHOLE_EDIT = 0.1  # of the changed pixels: a variant this near the way applied to the whole
#   picture is that edit (a lone product on white, greyed, is the grayscale photo), not a variant
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


def _tint_scaled(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Each pixel's tint (its offset from its own grey) scaled: a colour faded or deepened."""

    def scaled(rgb: np.ndarray) -> np.ndarray:
        grey = (rgb @ np.array([0.299, 0.587, 0.114]))[..., None]
        return grey + factor * (rgb - grey)

    return scaled


def _hue_nudged(rgb: np.ndarray) -> np.ndarray:
    """The hue turned 30 degrees about the grey axis (Rodrigues' rotation): a warmer or cooler
    shade of the same colour, its lightness and saturation kept."""
    angle = np.radians(30.0)
    axis = np.full(3, 1 / np.sqrt(3))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    turn = np.cos(angle) * np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * np.outer(axis, axis)
    return rgb @ turn.T


FAINT_WAYS = {"faded": _tint_scaled(0.5), "deeper": _tint_scaled(1.6), "nudged": _hue_nudged}
FAINT = 8  # levels: a faint variant changes half its part's pixels this much, most under VISIBLE


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{seed}\x1f{name}".encode()).digest()[:8], "big"))


def _product(small: np.ndarray) -> np.ndarray | None:
    """The product's pixels at WORK px: those off the backdrop's colour; None for a scene."""
    ring = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    backdrop = np.median(ring, axis=0)
    if (np.abs(ring - backdrop).max(axis=-1) <= 12).mean() < RING_PLAIN:
        return None
    return np.abs(small - backdrop).max(axis=-1) > BACKDROP


def _skin(colour: np.ndarray) -> np.ndarray:
    """Whether each colour (..., 3) is the colour of skin: a face or an arm is not a part a shop recolours."""
    return skin_coloured(colour[..., 0], colour[..., 1], colour[..., 2])


def _steps(small: np.ndarray) -> np.ndarray:
    """Each pixel's largest step to a neighbour at WORK px. A step is a change of hue (red-green,
    yellow-blue) or a change of brightness twice as large: a garment's folds and shading change
    its brightness more than its hue; the seam or outline between two parts is a step."""
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    colour = np.stack([r - g, (r + g) / 2 - b, (r + g + b) / 6], axis=-1)  # brightness at half weight
    step = np.zeros(small.shape[:2])
    across = np.abs(np.diff(colour, axis=1)).max(axis=-1)
    down = np.abs(np.diff(colour, axis=0)).max(axis=-1)
    for first, second, change in ((step[:, :-1], step[:, 1:], across), (step[:-1], step[1:], down)):
        np.maximum(first, change, out=first)
        np.maximum(second, change, out=second)
    return step


def _filtered(mask: np.ndarray, *filters: ImageFilter.Filter) -> np.ndarray:
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    for f in filters:
        image = image.filter(f)
    return np.asarray(image) > 0


def _alike(colour: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Whether each colour (..., 3) is `seed`'s under other light: brightness (the largest
    channel) within a factor of SHADE and, for a colour with a hue (saturation at least
    COLOURFUL), a hue within SAME_HUE degrees; a grey or white is alike only to one. Hue, not
    the channels' shares: under shading a saturated blue's channels do not scale together (the
    camera's curve, its clipped highlights), its hue barely moves."""

    def hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        top, span = rgb.max(-1), np.ptp(rgb, axis=-1)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        safe = np.maximum(span, 1e-6)
        hue = np.where(top == r, (g - b) / safe, np.where(top == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
        return hue * 60.0 % 360.0, span / np.maximum(top, 1.0), top

    hue, saturation, value = hsv(colour)
    seed_hue, seed_saturation, seed_value = hsv(seed)
    lit = np.abs(np.log(np.maximum(value, 1.0) / max(float(seed_value), 1.0))) <= np.log(SHADE)
    turn = np.abs((hue - seed_hue + 180.0) % 360.0 - 180.0)
    if seed_saturation >= COLOURFUL:
        return lit & (saturation >= COLOURFUL) & (turn <= SAME_HUE)
    return lit & (saturation < COLOURFUL)


def _whole(region: np.ndarray, smooth: list[np.ndarray], product: np.ndarray, small: np.ndarray) -> np.ndarray:
    """The part's cells: `region`, grown through the product's other cells and `smooth` regions
    in the same colour under other light (`_alike`), never skin. A fold's shadow or a lit flank
    splits a garment into regions; a shop recolours the garment whole, not up to the fold."""
    label = np.full((WORK, WORK), -1)
    for i, other in enumerate(smooth):
        label[other[:, 0], other[:, 1]] = i
    seed = small[region[:, 0], region[:, 1]].mean(0)
    means = np.array([small[o[:, 0], o[:, 1]].mean(0) for o in smooth] + [seed])
    # Each cell's colour: its region's mean if it has one, its own otherwise (a step's cell).
    colour = np.where((label >= 0)[..., None], means[label], small)
    alike = _alike(colour, seed) & product & ~_skin(colour)
    cells = np.zeros((WORK, WORK), bool)
    cells[region[:, 0], region[:, 1]] = True
    while True:
        reached = _filtered(cells, ImageFilter.MaxFilter(3)) & alike & ~cells
        if not reached.any():
            return cells
        joined = np.unique(label[reached])
        cells |= reached | np.isin(label, joined[joined >= 0])


def find_part(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float] | None:
    """One part of the product at full size (how much of each pixel is the part's, 0 to 1) and
    its share of the product, or None."""
    height, width = rgb.shape[:2]
    small = np.asarray(Image.fromarray(rgb.astype(np.uint8)).resize((WORK, WORK), Image.BILINEAR), np.float64)
    product = _product(small)
    if product is None or product.sum() < 0.05 * WORK * WORK:
        return None
    smooth = _steps(small) <= EDGE
    pieces = regions(product & smooth)
    parts = [
        region
        for region in pieces
        if PART[0] <= len(region) / product.sum() <= PART[1] and not _skin(small[region[:, 0], region[:, 1]].mean(0))
    ]
    if not parts:
        return None
    region = parts[rng.integers(len(parts))]
    cells = _whole(region, pieces, product, small)
    # Closed: the steps inside the part (a seam, a print's texture) are the part's too; left out,
    # they would stay in the old colour, speckling it with detail no recolour makes. The backdrop
    # between two of its pieces (between the legs) is not.
    cells = _filtered(cells, ImageFilter.MaxFilter(3), ImageFilter.MinFilter(3)) & product
    rows = np.minimum(np.arange(height) * WORK // height, WORK - 1)
    cols = np.minimum(np.arange(width) * WORK // width, WORK - 1)
    inner = _filtered(cells, ImageFilter.MinFilter(3))  # cells surely inside, their edge a cell in
    band = _filtered(cells, ImageFilter.MaxFilter(5)) & ~inner  # where the part's edge lies
    part = inner[rows[:, None], cols[None, :]].astype(np.float64)
    ys, xs = np.nonzero(band[rows[:, None], cols[None, :]])
    # A pixel of the band is the part's when its colour is nearer a part cell's around it than
    # any other smooth cell's (each side's own shading, not one mean): the part's edge is the
    # photo's own outline, not the cells' staircase. Then each pixel of the band goes with most
    # of its neighbours, so that a fabric's light flecks by the edge do not stay behind in the
    # old colour.
    colour = rgb[ys, xs]
    nearest = {True: np.full(len(ys), np.inf), False: np.full(len(ys), np.inf)}
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            cy = np.clip(rows[ys] + dy, 0, WORK - 1)
            cx = np.clip(cols[xs] + dx, 0, WORK - 1)
            distance = ((colour - small[cy, cx]) ** 2).sum(-1)
            for side, here in ((True, cells[cy, cx]), (False, ~cells[cy, cx] & smooth[cy, cx])):
                np.minimum(nearest[side], np.where(here, distance, np.inf), out=nearest[side])
    part[ys, xs] = nearest[True] < nearest[False]
    voted = _filtered(part > 0, ImageFilter.MedianFilter(FLECK))
    part[ys, xs] = voted[ys, xs]
    # Its edge softened a pixel inward, as a selection's: no pixel outside the part changes.
    soft = np.asarray(Image.fromarray((part * 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(1)), np.float64)
    return part * soft / 255.0, float(cells.sum()) / float(product.sum())


def recolours(path: Path, seed: int, faint: bool = False) -> list[tuple[str, Image.Image, float, float]]:
    """(way, picture, part's share of the product, share of the picture changed visibly) for each
    way that changes the photo's part visibly (`faint`: each faint way that changes it, by FAINT
    levels, most of it by less than VISIBLE); none for a photo without a part to recolour."""
    with Image.open(path) as im:
        rgb = np.asarray((ImageOps.exif_transpose(im) or im).convert("RGB"), np.float64)
    found = find_part(rgb, _rng(seed, path.name))
    if found is None:
        return []
    part, share = found
    out = []
    seen = FAINT if faint else VISIBLE  # levels a visible change moves a pixel by
    for way, recolour in (FAINT_WAYS if faint else WAYS).items():
        whole = np.clip(recolour(rgb), 0, 255)
        pixels = rgb + part[..., None] * (whole - rgb)
        moved = np.abs(pixels - rgb).max(axis=-1)
        changed = moved >= VISIBLE
        if (moved[part > 0.5] >= seen).mean() < 0.5:
            continue  # a grey part's hue, a white part lighter: no visible variant
        if faint and changed[part > 0.5].mean() >= 0.5:
            continue  # no longer faint: the other ways' kind of variant
        if (np.abs(pixels - whole).max(axis=-1) >= seen).sum() < WHOLE_EDIT * (moved >= seen).sum():
            continue  # the part is all the colour the photo has: an edit of the whole picture
        out.append((way, Image.fromarray(pixels.round().astype(np.uint8)), share, float(changed.mean())))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=Path, required=True, help="folder of product photos")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--faint", action="store_true", help="near twins: faded, deeper, hue nudged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in args.originals.iterdir() if p.suffix.lower() in SUFFIXES)
    rows = []
    for i, path in enumerate(files, 1):
        for way, picture, share, changed in recolours(path, args.seed, args.faint):
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
