#!/usr/bin/env python3
"""Prints and templates: another design on the same mockup is another product; a shop's flat
overlay on a photo is not.

    python scripts/make_prints.py --originals DIR --out DIR [--seed N]
        [--part dev|lockbox [--split JSON]] [--sources CSV] [--covers N] [--limit N] [--quiet]

writes

    out/catalog/<stem>.<ext>          each photo a print fits on, as it is (bytes copied unchanged)
    out/catalog/<stem>__p1.jpg        the photo with a first print on the garment's chest
    out/catalog/cover_<k>.jpg         cover 1 of each generated cover template
    out/queries/<stem>__p2.jpg, __p3  the photo with other prints (other artwork, other sizes):
                                      kind `print_variant`, expected empty
    out/queries/<stem>[__p1]__<kind>.jpg
                                      a copy of the photo or of P1 with a flat overlay (kinds
                                      `caption_band`, `chest_badge`, `flat_text`, `flat_logo`,
                                      two per photo, the kinds cycling): expected = what it copies
    out/queries/<stem>[__p1]__<kind>.jpg
                                      a copy with an overlay off the product or through it (kinds
                                      `backdrop_watermark`: translucent text across the picture;
                                      `edge_badge`: a badge flush with a corner; `translucent_logo`:
                                      a logo on the chest at 35-60% opacity), one per photo, the
                                      kinds cycling: expected = what it copies
    out/queries/cover_<k>__c2.jpg, __c3
                                      covers 2 and 3 of the template: other words, the same layout
                                      (kind `template_variant`, expected empty)
    out/queries/cover_<k>__sticker.jpg, __caption
                                      cover 1 with a sticker or a flat caption band (kinds
                                      `cover_sticker`, `cover_caption`): expected = cover_<k>
    out/truth.csv                     query,expected,kind,source (`source`: the photo's stem or
                                      the template's cover_<k>), as make_benchmark.py writes it
    out/prints.jsonl                  one line per generated file: its role, what it was made
                                      from, the artwork (kind, words, shapes, inks), its size,
                                      place, opacity, warp; a cover's template and words

Print-on-demand shops photograph one mockup and print each design on its chest; a series'
covers share one template with other words. Each is another product, and the duplicate check
must not call it a copy of its sibling; while a copy with a caption band, a badge or a logo
pasted over the same spot IS a copy (a shop's edit) and must stay `duplicate`. The difference
is physical: a print lies in the cloth (its ink darkened by the folds and shadows that darken
the cloth, bent along them), an overlay lies on the picture (one flat colour whatever is
beneath, or the picture showing through it unshaded), and may reach past the product: across
the backdrop, to the picture's edge.

A print's place: on a photo with a plain backdrop (make_recolours.py's test), the garment is the
cloth (the product's pixels, not skin) in the colour of its largest smooth region in the upper
part of the picture, as the same colour under other light (make_recolours._alike); the print
area is the largest square inside it, away from its outline, seams and zips, in the upper-middle
of the garment. A photo where no print of PRINT_SIZE[0] of the torso's width fits is skipped.
With `--sources` (a CSV of name,origin such as the bench's sources.csv), only tops are used
(TOPS: the origin's file name tells the product).

A print: artwork (a logo of 1-3 geometric shapes, a slogan, a pattern of stripes, dots or
checks; 1-3 inks that stand out from the cloth), PRINT_SIZE of the torso's width; each ink
multiplied by the cloth's shading (the photo's local brightness over the cloth's own, so a
white ink on black cloth is shaded too), moved along the shading's gradient (a few px: the
folds bend it), its edge softened by a fraction of a pixel, INK_OPACITY (the weave shows through
a little). An overlay is pasted as drawn: no shading, no warp.

Every choice comes from a generator seeded by (seed, file name, kind): the same files, byte
for byte, every run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps
from scipy import ndimage

from scripts import make_recolours

WORK = 160  # px: the longer side the garment and its print area are found at
MARGIN = 2  # cells at WORK px: the print area stays this far inside the garment's outline
SMOOTH = 12  # levels: a step below this between neighbours at WORK px is inside a smooth region
SEEDS = 4  # the largest smooth regions tried as the garment's colour: the largest garment wins
UPPER = 0.45  # of the picture's height: the garment's seed region starts above this
CHEST = (0.1, 0.45)  # of the garment's height (at most SPAN) from its top: where a print's centre lies
SPAN = 0.6  # of the picture's height: a garment taller than this runs on into trousers of its colour
CENTRED = 0.15  # cells of square side given up per cell off the garment's middle: centre first
MIN_TORSO = 0.15  # of the picture's width: a narrower garment is too small to print on
PRINT_SIZE = (0.15, 0.45)  # of the torso's width: the artwork's width
SHADE = (0.15, 1.25)  # the cloth's shading, clipped: a fold's shadow to a lit crest
SHADE_FLOOR = 10.0  # levels added to brightness before the ratio: a black cloth's noise is not shading
SHADE_BLUR = 1.0  # px: the brightness is smoothed this much (the JPEG's grain is not shading)
CLOTH_LIT = 85  # percentile of the garment's brightness taken as the cloth's own (unshaded)
WARP_BLUR = 4.0  # px: the shading smoothed this much before its gradient bends the print
WARP_GAIN = 120.0  # px of displacement per unit of shading gradient (per px)
WARP_MAX = 4.0  # px: the most a print moves
EDGE_SOFT = (0.3, 0.7)  # px: the Gaussian softening an ink's edge
INK_OPACITY = (0.85, 1.0)  # a print's ink: the cloth's texture shows through a little
OVERLAY_OPACITY = (0.8, 1.0)  # a caption band: opaque or 80%
INK_CONTRAST = 70  # levels of brightness (or twice that of colour) an ink differs from the cloth by
SUPERSAMPLE = 3  # artwork is drawn this many times larger, then reduced: smooth edges
JPEG_QUALITY = 90  # as the rest of the benchmarks
COVER = (600, 900)  # px: a generated cover
COVERS = 30  # templates per part
TITLE_CONTRAST = 70  # levels of brightness a title differs from both ends of its cover's background by
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "DejaVuSansCondensed-Bold.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSerif.ttf", "DejaVuSansCondensed.ttf", "DejaVuSans-BoldOblique.ttf")  # fmt: skip
SPLIT = Path(__file__).resolve().parents[1] / "docs" / "lab" / "lockbox-split.json"
TOPS = re.compile(r"^[mw][hjst]\d|tee|tshirt|t-shirt|hoodie|sweat|jacket|tote|shirt|tank", re.I)  # origin's
#   file name: Magento's mh/mj/ms/mt/wh/wj/ws/wt (not msh/wsh: shorts), Solidus' tees and hoodies
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
PRINT_KINDS = ("logo", "slogan", "pattern")
OVERLAY_KINDS = ("caption_band", "chest_badge", "flat_text", "flat_logo")
OVERLAYS_PER_PHOTO = 2  # the kinds cycle over the photos: each about as often
# Overlays laid over the photo, not into the product: across the backdrop, at the picture's edge,
# or one the picture shows through. Each is an edit of the photograph whatever a shop's `marks`
# says (issue 83). One more copy per photo, these kinds cycling.
LOOSE_KINDS = ("backdrop_watermark", "edge_badge", "translucent_logo")
WATERMARK_WIDTH = (0.55, 0.9)  # of the picture's width: wider than the product, across the backdrop
WATERMARK_OPACITY = (0.3, 0.6)
WATERMARK_TURN = 30.0  # degrees: at most this far from level (a diagonal watermark)
EDGE_BADGE = (0.12, 0.25)  # of the picture's shorter side: a corner badge's side, flush with two edges
TRANSLUCENT_OPACITY = (0.35, 0.6)  # a logo the cloth shows through
INKS = {
    "white": (245, 245, 240), "black": (25, 25, 28), "red": (200, 30, 40), "yellow": (245, 200, 30),
    "navy": (30, 45, 110), "green": (30, 140, 70), "orange": (240, 120, 30), "pink": (235, 110, 160),
    "sky": (80, 170, 230), "grey": (130, 130, 135), "purple": (110, 50, 140), "cream": (240, 225, 190),
}  # fmt: skip
WORDS = (
    "WILD",
    "NORTH",
    "CITY",
    "SUMMER",
    "RUN",
    "OCEAN",
    "DREAM",
    "MOUNTAIN",
    "VIBES",
    "BOLD",
    "LOCAL",
    "CLUB",
    "TEAM",
    "COFFEE",
    "SURF",
    "ROCK",
    "CAMP",
    "FREE",
    "HOME",
    "TOKYO",
    "BERLIN",
    "RETRO",
    "STAY",
    "WAVE",
    "FOREST",
    "SPORT",
    "NIGHT",
    "SUN",
    "GOOD",
    "ATHLETIC",
    "DEPT",
    "1989",
    "EST. 2004",
)
BADGES = ("SALE -20%", "NEW", "-30%", "HOT", "SALE", "-50%", "BEST", "TOP", "-15%", "LIMITED")
CAPTIONS = ("FREE SHIPPING", "NEW COLLECTION", "SUMMER SALE", "ONLY TODAY", "shop.example", "BESTSELLER",
            "ORGANIC COTTON", "SIZES S-XXL")  # fmt: skip
TITLE_WORDS = (
    "The",
    "Silent",
    "River",
    "Last",
    "Garden",
    "Winter",
    "Glass",
    "City",
    "Shadow",
    "Light",
    "House",
    "Salt",
    "Iron",
    "Summer",
    "Night",
    "Empire",
    "Stone",
    "Letters",
    "Machine",
    "Orchard",
    "Kingdom",
    "Harbour",
    "Lost",
    "Second",
    "Daughter",
    "Fire",
    "Map",
    "Island",
    "Secret",
    "Storm",
    "Atlas",
    "Echo",
    "Hollow",
    "Crown",
    "North",
    "Paper",
    "Blue",
    "Wolf",
    "Cartographer",
    "Tides",
)
FIRST_NAMES = ("Anna", "Marco", "Lena", "James", "Sofia", "Tomas", "Ines", "David", "Maya", "Jonas", "Clara", "Omar")
LAST_NAMES = ("Berg", "Rossi", "Novak", "Hart", "Lindqvist", "Moreau", "Okafor", "Kowalski", "Silva", "Brandt")
SERIES = ("Book One", "A Novel", "Volume II", "The Trilogy", "Stories", "Collected Poems", "Vol. 3")
STICKERS = ("Bestseller", "-30%", "NEW", "Award winner", "-20%", "Signed copy", "SALE")

Log = dict[str, Any]


def _seed(seed: int, *parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()[:8], "big")


def _rng(seed: int, *parts: str) -> random.Random:
    """The choices of one (seed, file, kind): the same every run, whatever ran before."""
    return random.Random(_seed(seed, *parts))


def _font(size: int, name: str = FONTS[0]) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / name
    if path.is_file():
        return ImageFont.truetype(str(path), max(6, size))
    return ImageFont.load_default(size=max(6, size))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


# --------------------------------------------------------------------------------------------
# Where a print goes
# --------------------------------------------------------------------------------------------


class Area(NamedTuple):
    """Where a print fits, at full size: its centre, the largest artwork side that fits, the
    torso's width there; the garment (a 0-1 mask) and the cloth's own (unshaded) brightness."""

    cx: float
    cy: float
    side: float
    torso: float
    garment: np.ndarray
    cloth: np.ndarray  # RGB of the lit cloth
    lit: float  # brightness of the lit cloth


def print_area(rgb: np.ndarray) -> Area | None:
    """The garment's chest, where a print fits; None for a scene, or a photo without room."""
    height, width = rgb.shape[:2]
    scale = WORK / max(height, width)
    sh, sw = max(8, round(height * scale)), max(8, round(width * scale))
    small = np.asarray(Image.fromarray(rgb.astype(np.uint8)).resize((sw, sh), Image.BILINEAR), np.float64)
    product = make_recolours._product(small)
    if product is None or product.sum() < 0.05 * sh * sw:
        return None
    cloth = product & ~make_recolours._skin(small)
    smooth = make_recolours._steps(small) <= SMOOTH
    labels, count = ndimage.label(cloth & smooth, structure=np.ones((3, 3)))
    if not count:
        return None
    index = np.arange(1, count + 1)
    sizes = ndimage.sum(np.ones_like(labels), labels, index)
    tops = ndimage.minimum(np.arange(sh)[:, None].repeat(sw, 1), labels, index)
    upper = [i for i in range(count) if tops[i] < UPPER * sh]
    if not upper:
        return None
    garment = np.zeros_like(cloth)
    for i in sorted(upper, key=lambda i: -sizes[i])[:SEEDS]:
        # The region's colour under other light, joined across folds: the garment it is part of.
        seed_region = labels == index[i]
        alike = ndimage.binary_closing(
            cloth & make_recolours._alike(small, small[seed_region].mean(0)), np.ones((3, 3))
        )
        parts, _ = ndimage.label(alike, structure=np.ones((3, 3)))
        found = np.bincount(parts[seed_region]).argmax()
        if found and (parts == found).sum() > garment.sum():
            garment = parts == found
    if not garment.any():
        return None
    rows, cols = np.nonzero(garment)
    top = rows.min()
    bottom = min(rows.max(), top + SPAN * sh)
    filled = ndimage.binary_fill_holes(garment)
    distance = ndimage.distance_transform_cdt(np.pad(garment, 1), metric="chessboard")[1:-1, 1:-1]
    room = 2 * (distance - MARGIN) + 1  # side (cells) of the square centred there, margin kept
    chest = np.zeros_like(garment)
    chest[round(top + CHEST[0] * (bottom - top)) : round(top + CHEST[1] * (bottom - top)) + 1] = True
    room = np.where(chest & garment & (room > 0), room, 0)
    if not room.any():
        return None
    middle = np.zeros(sh)
    for r in range(sh):
        inside = np.nonzero(filled[r])[0]
        middle[r] = (inside.min() + inside.max()) / 2 if inside.size else 0
    off = np.abs(np.arange(sw)[None, :] - middle[:, None])
    score = np.where(room > 0, room - CENTRED * off, -np.inf)
    r, c = np.unravel_index(int(np.argmax(score)), score.shape)
    run = filled[r]
    left = c - np.argmin(run[c::-1]) + 1 if not run[: c + 1].all() else 0
    right = c + np.argmin(run[c:]) if not run[c:].all() else sw
    torso = (right - left) / scale
    side = room[r, c] / scale
    if torso < MIN_TORSO * width or side < PRINT_SIZE[0] * torso:
        return None
    mask = Image.fromarray(garment.astype(np.uint8) * 255).resize((width, height), Image.BILINEAR)
    full = np.asarray(mask.filter(ImageFilter.GaussianBlur(1.0)), np.float64) / 255.0
    lit = float(np.percentile(_luma(small[garment]), CLOTH_LIT))
    return Area((c + 0.5) / scale, (r + 0.5) / scale, side, torso, full, small[garment].mean(0), lit)


# --------------------------------------------------------------------------------------------
# Artwork: RGBA pictures, `width` px wide, drawn SUPERSAMPLE times larger and reduced
# --------------------------------------------------------------------------------------------


def _inks(rng: random.Random, cloth: np.ndarray, count: int) -> list[str]:
    """`count` inks that stand out from the cloth (brightness, or colour twice as far)."""
    lum = float(_luma(cloth))
    standing = [
        name
        for name, ink in INKS.items()
        if abs(float(_luma(np.array(ink, float))) - lum) >= INK_CONTRAST
        or np.abs(np.array(ink, float) - cloth).sum() >= 3 * INK_CONTRAST
    ]
    return rng.sample(standing, min(count, len(standing))) or ["white"]


def _star(cx: float, cy: float, radius: float, points: int, turn: float) -> list[tuple[float, float]]:
    out = []
    for k in range(2 * points):
        r = radius if k % 2 == 0 else radius * 0.45
        angle = turn + math.pi * k / points - math.pi / 2
        out.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return out


def _shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], fill: tuple) -> None:
    x0, y0, x1, y1 = box
    cx, cy, radius = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(2, round(radius * 0.22)))
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    elif shape == "triangle":
        draw.regular_polygon((cx, cy, radius), 3, fill=fill)
    elif shape == "hexagon":
        draw.regular_polygon((cx, cy, radius), 6, fill=fill)
    else:  # star
        draw.polygon(_star(cx, cy, radius, 5, 0.0), fill=fill)


SHAPES = ("circle", "ring", "square", "diamond", "triangle", "hexagon", "star")


def _text_picture(text: str, font_name: str, colour: tuple, size: int = 120) -> Image.Image:
    """`text` in one colour on transparency, cropped to its ink."""
    font = _font(size, font_name)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = (round(v) for v in probe.multiline_textbbox((0, 0), text, font=font, align="center"))
    picture = Image.new("RGBA", (right - left + 4, bottom - top + 4), (*colour, 0))
    ImageDraw.Draw(picture).multiline_text((2 - left, 2 - top), text, font=font, fill=(*colour, 255), align="center")
    return picture.crop(picture.getbbox() or (0, 0, 1, 1))


def artwork(kind: str, rng: random.Random, width: int, cloth: np.ndarray) -> tuple[Image.Image, Log]:
    """A design `width` px wide (RGBA) and what it is."""
    big = width * SUPERSAMPLE
    if kind == "logo":
        inks = _inks(rng, cloth, rng.randint(1, 3))
        shapes = [rng.choice(SHAPES) for _ in range(len(inks))]
        layout = rng.choice(("nested", "row", "mark_word"))
        height = big if layout == "nested" else (big // 2 if layout == "row" else round(big * 0.75))
        picture = Image.new("RGBA", (big, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(picture)
        words = ""
        if layout == "nested":  # each shape inside the last
            for k, (shape, ink) in enumerate(zip(shapes, inks, strict=True)):
                inset = big * 0.17 * k
                _shape(draw, shape, (inset, inset, big - inset, big - inset), (*INKS[ink], 255))
        elif layout == "row":  # side by side
            step = big / len(shapes)
            side = min(step * 0.9, height)
            for k, (shape, ink) in enumerate(zip(shapes, inks, strict=True)):
                x = k * step + (step - side) / 2
                _shape(draw, shape, (x, (height - side) / 2, x + side, (height + side) / 2), (*INKS[ink], 255))
        else:  # a mark over a word
            side = height * 0.55
            _shape(draw, shapes[0], ((big - side) / 2, 0, (big + side) / 2, side), (*INKS[inks[0]], 255))
            words = rng.choice(WORDS)
            text = _text_picture(words, rng.choice(FONTS), INKS[inks[-1]])
            text.thumbnail((big, round(height * 0.35)), Image.LANCZOS)
            picture.alpha_composite(text, ((big - text.width) // 2, height - text.height))
        log = {"artwork": "logo", "layout": layout, "shapes": shapes, "inks": inks, "words": words}
    elif kind == "slogan":
        inks = _inks(rng, cloth, rng.randint(1, 2))
        lines = [rng.choice(WORDS) for _ in range(rng.randint(1, 2))]
        font_name = rng.choice(FONTS)
        picture = Image.new("RGBA", (big, big * 2), (0, 0, 0, 0))
        y = 0
        for k, line in enumerate(lines):
            text = _text_picture(line, font_name, INKS[inks[k % len(inks)]])
            text = text.resize((big, max(1, round(text.height * big / text.width))), Image.LANCZOS)
            picture.alpha_composite(text, (0, y))
            y += text.height + big // 20
        if rng.random() < 0.4:  # a rule under the words
            ImageDraw.Draw(picture).rectangle((0, y, big, y + big // 25), fill=(*INKS[inks[-1]], 255))
            y += big // 25
        picture = picture.crop((0, 0, big, max(1, y)))
        log = {"artwork": "slogan", "words": lines, "font": font_name, "inks": inks}
    else:  # pattern
        inks = _inks(rng, cloth, rng.randint(1, 2))
        motif = rng.choice(("stripes", "diagonal", "dots", "checks"))
        outline = rng.choice(("square", "circle", "wide"))
        height = big // 2 if outline == "wide" else big
        picture = Image.new("RGBA", (big, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(picture)
        step = big / rng.randint(5, 10)
        first, second = (*INKS[inks[0]], 255), (*INKS[inks[-1]], 255)
        if motif == "stripes":
            for k, y in enumerate(np.arange(0, height, step)):
                draw.rectangle((0, y, big, y + step / 2), fill=first if k % 2 == 0 else second)
        elif motif == "diagonal":
            for k, x in enumerate(np.arange(-height, big, step)):
                draw.polygon([(x, height), (x + step / 2, height), (x + step / 2 + height, 0), (x + height, 0)],
                             fill=first if k % 2 == 0 else second)  # fmt: skip
        elif motif == "dots":
            for k, y in enumerate(np.arange(step / 2, height, step)):
                for x in np.arange(step / 2 + (step / 2) * (k % 2), big, step):
                    draw.ellipse((x - step / 3, y - step / 3, x + step / 3, y + step / 3), fill=first)
        else:  # checks
            for i, y in enumerate(np.arange(0, height, step)):
                for j, x in enumerate(np.arange(0, big, step)):
                    if (i + j) % 2 == 0:
                        draw.rectangle((x, y, x + step, y + step), fill=first)
                    elif len(inks) > 1:
                        draw.rectangle((x, y, x + step, y + step), fill=second)
        if outline == "circle":
            keep = Image.new("L", picture.size, 0)
            ImageDraw.Draw(keep).ellipse((0, 0, big, height), fill=255)
            picture.putalpha(Image.fromarray(np.minimum(np.asarray(picture.getchannel("A")), np.asarray(keep))))
        log = {"artwork": "pattern", "motif": motif, "outline": outline, "inks": inks}
    out = picture.resize((width, max(1, round(picture.height * width / big))), Image.LANCZOS)
    return out, log


# --------------------------------------------------------------------------------------------
# A print in the cloth, an overlay on the picture
# --------------------------------------------------------------------------------------------


def printed(rgb: np.ndarray, area: Area, art: Image.Image, rng: random.Random) -> tuple[np.ndarray, np.ndarray, Log]:
    """The photo with `art` printed on the chest, and the ink's coverage (0-1) at full size."""
    height, width = rgb.shape[:2]
    pad = int(WARP_MAX) + 4
    x0 = round(area.cx - art.width / 2)
    y0 = round(area.cy - art.height / 2)
    box = (max(0, x0 - pad), max(0, y0 - pad), min(width, x0 + art.width + pad), min(height, y0 + art.height + pad))
    bx0, by0, bx1, by1 = box
    layer = np.zeros((by1 - by0, bx1 - bx0, 4))
    a = np.asarray(art, np.float64)
    a = np.concatenate([a[..., :3] * a[..., 3:] / 255.0, a[..., 3:]], -1)  # premultiplied: warped as one
    ax, ay = x0 - bx0, y0 - by0
    layer[ay : ay + a.shape[0], ax : ax + a.shape[1]] = a[: layer.shape[0] - ay, : layer.shape[1] - ax]
    crop = rgb[by0:by1, bx0:bx1]
    luma = ndimage.gaussian_filter(_luma(crop), SHADE_BLUR)
    shade = np.clip((luma + SHADE_FLOOR) / (area.lit + SHADE_FLOOR), *SHADE)
    # The folds bend the print: each ink moves along the shading's gradient, a few px at most.
    bent = ndimage.gaussian_filter(shade, WARP_BLUR)
    dy, dx = np.gradient(bent)
    dy, dx = (np.clip(WARP_GAIN * d, -WARP_MAX, WARP_MAX) for d in (dy, dx))
    yy, xx = np.mgrid[0 : layer.shape[0], 0 : layer.shape[1]].astype(np.float64)
    warped = np.stack(
        [ndimage.map_coordinates(layer[..., k], [yy + dy, xx + dx], order=1, mode="constant") for k in range(4)], -1
    )
    soften = rng.uniform(*EDGE_SOFT)
    opacity = rng.uniform(*INK_OPACITY)
    alpha = ndimage.gaussian_filter(warped[..., 3] / 255.0, soften) * opacity * area.garment[by0:by1, bx0:bx1]
    # Back from premultiplied: an ink's colour where its alpha is thin is still the ink's.
    colour = np.clip(warped[..., :3] / np.maximum(warped[..., 3:], 1e-6) * 255.0, 0, 255)
    ink = colour * shade[..., None]
    out = rgb.copy()
    out[by0:by1, bx0:bx1] = crop * (1 - alpha[..., None]) + ink * alpha[..., None]
    coverage = np.zeros((height, width))
    coverage[by0:by1, bx0:bx1] = alpha
    log = {"opacity": round(opacity, 3), "soften_px": round(soften, 2),
           "warp_px": round(float(np.hypot(dy, dx).max()), 2)}  # fmt: skip
    return out, coverage, log


def pasted(image: Image.Image, layer: Image.Image, at: tuple[int, int]) -> Image.Image:
    """`layer` (RGBA) on `image` as drawn: no shading, no warp."""
    base = image.convert("RGBA")
    base.alpha_composite(layer, (max(0, at[0]), max(0, at[1])))
    return base.convert("RGB")


def _label(text: str, font_name: str, colour: tuple, height: int) -> Image.Image:
    picture = _text_picture(text, font_name, colour)
    return picture.resize((max(1, round(picture.width * height / picture.height)), height), Image.LANCZOS)


def _contrasting(colour: tuple) -> tuple[int, int, int]:
    return (20, 20, 20) if _luma(np.array(colour, float)) > 140 else (250, 250, 250)


def overlay(kind: str, image: Image.Image, area: Area, rng: random.Random) -> tuple[Image.Image, Log]:
    """A shop's flat edit of `image` on the chest (`kind` one of OVERLAY_KINDS)."""
    w, h = image.size
    cloth = area.cloth
    if kind == "caption_band":
        band_h = round(h * rng.uniform(0.07, 0.13))
        full = rng.random() < 0.5
        x0, x1 = (0, w) if full else (round(area.cx - area.torso * 0.55), round(area.cx + area.torso * 0.55))
        x0, x1 = max(0, x0), min(w, x1)
        y0 = max(0, round(area.cy + rng.uniform(-0.3, 0.3) * band_h - band_h / 2))
        colour = INKS[rng.choice(list(INKS))]
        opacity = rng.choice((0.8, 1.0))
        layer = Image.new("RGBA", (x1 - x0, band_h), (*colour, round(255 * opacity)))
        text = rng.choice(CAPTIONS)
        label = _label(text, rng.choice(FONTS), _contrasting(colour), round(band_h * 0.55))
        label.thumbnail((round((x1 - x0) * 0.9), band_h), Image.LANCZOS)
        layer.alpha_composite(label, ((layer.width - label.width) // 2, (band_h - label.height) // 2))
        log = {"overlay": kind, "text": text, "box": [x0, y0, x1, y0 + band_h], "opacity": opacity}
        return pasted(image, layer, (x0, y0)), log
    if kind == "chest_badge":
        side = round(area.torso * rng.uniform(0.2, 0.35))
        shape = rng.choice(("circle", "rounded"))
        colour = INKS[rng.choice(("red", "yellow", "black", "sky", "orange", "green"))]
        height = side if shape == "circle" else round(side * 0.6)
        layer = Image.new("RGBA", (side, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        if shape == "circle":
            draw.ellipse((0, 0, side - 1, side - 1), fill=(*colour, 255))
        else:
            draw.rounded_rectangle((0, 0, side - 1, height - 1), radius=side // 8, fill=(*colour, 255))
        text = rng.choice(BADGES)
        label = _label(text.replace(" ", "\n") if shape == "circle" else text, FONTS[0], _contrasting(colour),
                       round(height * 0.4))  # fmt: skip
        label.thumbnail((round(side * 0.72), round(height * 0.6)), Image.LANCZOS)
        layer.alpha_composite(label, ((side - label.width) // 2, (height - label.height) // 2))
        x = round(area.cx + rng.uniform(-0.25, 0.25) * area.torso - side / 2)
        y = round(area.cy + rng.uniform(-0.3, 0.3) * side - height / 2)
        log = {"overlay": kind, "text": text, "shape": shape, "box": [x, y, x + side, y + height]}
        return pasted(image, layer, (x, y)), log
    if kind == "flat_text":
        ink = _inks(rng, cloth, 1)[0]
        text = rng.choice(WORDS)
        font_name = rng.choice(FONTS)
        label = _text_picture(text, font_name, INKS[ink])
        width = round(area.torso * rng.uniform(*PRINT_SIZE))
        label = label.resize((width, max(1, round(label.height * width / label.width))), Image.LANCZOS)
        x, y = round(area.cx - label.width / 2), round(area.cy - label.height / 2)
        log = {"overlay": kind, "text": text, "font": font_name, "ink": ink, "box": [x, y, x + label.width,
               y + label.height]}  # fmt: skip
        return pasted(image, label, (x, y)), log
    # flat_logo: a print's artwork, pasted flat
    width = round(area.torso * rng.uniform(PRINT_SIZE[0], min(PRINT_SIZE[1], area.side / area.torso)))
    art, art_log = artwork(rng.choice(PRINT_KINDS), rng, width, cloth)
    x, y = round(area.cx - art.width / 2), round(area.cy - art.height / 2)
    log = {"overlay": kind, **art_log, "box": [x, y, x + art.width, y + art.height]}
    return pasted(image, art, (x, y)), log


def loose_overlay(kind: str, image: Image.Image, area: Area, rng: random.Random) -> tuple[Image.Image, Log]:
    """A shop's edit of `image` that does not lie in the product (`kind` one of LOOSE_KINDS): a
    translucent watermark across the picture, a badge in a corner, or a logo on the chest the
    cloth shows through."""
    w, h = image.size
    if kind == "backdrop_watermark":
        text = rng.choice(CAPTIONS)
        colour = rng.choice(((250, 250, 250), (20, 20, 20), (128, 128, 128)))
        opacity = rng.uniform(*WATERMARK_OPACITY)
        label = _text_picture(text, rng.choice(FONTS), colour)
        width = round(w * rng.uniform(*WATERMARK_WIDTH))
        label = label.resize((width, max(1, round(label.height * width / label.width))), Image.LANCZOS)
        angle = rng.uniform(-WATERMARK_TURN, WATERMARK_TURN)
        label = label.rotate(angle, resample=Image.BICUBIC, expand=True)
        label.thumbnail((w, h), Image.LANCZOS)  # a turned label stays inside the picture
        label.putalpha(label.getchannel("A").point(lambda a: round(a * opacity)))
        x = (w - label.width) // 2
        y = min(max(0, round(area.cy - label.height / 2)), h - label.height)
        log = {"overlay": kind, "text": text, "opacity": round(opacity, 3), "angle": round(angle, 1),
               "box": [x, y, x + label.width, y + label.height]}  # fmt: skip
        return pasted(image, label, (x, y)), log
    if kind == "edge_badge":
        side = round(min(w, h) * rng.uniform(*EDGE_BADGE))
        colour = INKS[rng.choice(("red", "yellow", "black", "sky", "orange", "green"))]
        layer = Image.new("RGBA", (side, side), (*colour, 255))
        text = rng.choice(BADGES)
        label = _label(text.replace(" ", "\n"), FONTS[0], _contrasting(colour), round(side * 0.35))
        label.thumbnail((round(side * 0.8), round(side * 0.7)), Image.LANCZOS)
        layer.alpha_composite(label, ((side - label.width) // 2, (side - label.height) // 2))
        corner = rng.choice(("top_left", "top_right", "bottom_left", "bottom_right"))
        x = 0 if corner.endswith("left") else w - side
        y = 0 if corner.startswith("top") else h - side
        log = {"overlay": kind, "text": text, "corner": corner, "box": [x, y, x + side, y + side]}
        return pasted(image, layer, (x, y)), log
    # translucent_logo: a print's artwork laid flat on the chest, the cloth showing through
    width = round(area.torso * rng.uniform(PRINT_SIZE[0], min(PRINT_SIZE[1], area.side / area.torso)))
    art, art_log = artwork(rng.choice(PRINT_KINDS), rng, width, area.cloth)
    opacity = rng.uniform(*TRANSLUCENT_OPACITY)
    art.putalpha(art.getchannel("A").point(lambda a: round(a * opacity)))
    x, y = round(area.cx - art.width / 2), round(area.cy - art.height / 2)
    log = {"overlay": kind, **art_log, "opacity": round(opacity, 3), "box": [x, y, x + art.width, y + art.height]}
    return pasted(image, art, (x, y)), log


def prints(rgb: np.ndarray, area: Area, name: str, seed: int) -> list[tuple[np.ndarray, np.ndarray, Log]]:
    """P1, P2, P3: three designs (each another kind of artwork, another size) on the same spot."""
    order = _rng(seed, name, "print-kinds").sample(PRINT_KINDS, len(PRINT_KINDS))
    largest = min(PRINT_SIZE[1], area.side / area.torso)
    out = []
    for k, kind in enumerate(order, 1):
        rng = _rng(seed, name, f"p{k}")
        share = rng.uniform(PRINT_SIZE[0], largest)
        art, art_log = artwork(kind, rng, max(8, round(area.torso * share)), area.cloth)
        if art.height > area.side:  # a tall design: as high as the area allows
            art = art.resize((max(8, round(art.width * area.side / art.height)), round(area.side)), Image.LANCZOS)
        picture, coverage, log = printed(rgb, area, art, rng)
        place = {"centre": [round(area.cx), round(area.cy)], "size": [art.width, art.height],
                 "share_of_torso": round(art.width / area.torso, 3)}  # fmt: skip
        out.append((picture, coverage, {**art_log, **place, **log}))
    return out


# --------------------------------------------------------------------------------------------
# Covers: one template, other words
# --------------------------------------------------------------------------------------------


def _title(rng: random.Random) -> str:
    words = [rng.choice(TITLE_WORDS) for _ in range(rng.randint(1, 4))]
    return " ".join(words)


def _wrapped(text: str, font: Any, width: int) -> str:
    lines: list[str] = []
    for word in text.split():
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(trial) <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    return "\n".join(lines)


def template(seed: int, k: int, photos: list[Path]) -> Log:
    """A cover layout: background, where and how the title and author go, the marks."""
    pick = _rng(seed, "template", str(k))
    photo = photos[pick.randrange(len(photos))].name if photos else ""
    rng = _rng(seed, "template", str(k), photo)
    background = rng.choice(("flat", "gradient", "photo", "photo_panel")) if photo else rng.choice(("flat", "gradient"))
    colours = rng.sample(list(INKS), 3)
    ends = [float(_luma(np.array(INKS[c], float))) for c in colours[:2]]
    readable = [
        name
        for name in ("white", "black", "cream", "yellow", "navy")
        if all(abs(float(_luma(np.array(INKS[name], float))) - end) >= TITLE_CONTRAST for end in ends)
    ] or ["white" if min(ends) < 128 else "black"]  # a gradient from dark to light: the nearer end's opposite
    return {
        "template": k,
        "background": background,
        "photo": photo,
        "colours": colours,
        "crop": [rng.uniform(0, 0.3), rng.uniform(0, 0.3), rng.uniform(0.5, 0.8)],  # left, top, share
        "title_at": rng.choice(("top", "middle", "bottom")),
        "align": rng.choice(("center", "left")),
        "title_font": rng.choice(FONTS),
        "title_size": rng.randint(48, 80),
        "title_colour": rng.choice(readable),
        "author_at": rng.choice(("top", "bottom")),
        "author_font": rng.choice(FONTS),
        "author_size": rng.randint(24, 36),
        "series": rng.choice(SERIES),
        "rules": rng.random() < 0.5,
        "frame": rng.random() < 0.35,
        "mark": rng.choice(("circle", "square", "none")),
        "publisher": rng.choice(("Northway", "Blue Heron", "Kite Press", "Albatross", "Meridian")),
    }


def cover(spec: Log, title: str, author: str, originals: Path) -> Image.Image:
    """One cover of the template `spec` with these words."""
    w, h = COVER
    top, bottom = INKS[spec["colours"][0]], INKS[spec["colours"][1]]
    if spec["background"] == "flat":
        image = Image.new("RGB", COVER, top)
    else:
        ramp = np.linspace(0, 1, h)[:, None, None]
        image = Image.fromarray((np.array(top) * (1 - ramp) + np.array(bottom) * ramp).repeat(w, 1).astype(np.uint8))
    if spec["background"].startswith("photo"):
        with Image.open(originals / spec["photo"]) as opened:
            photo = opened.convert("RGB")
        left, upper, share = spec["crop"]
        pw, ph = photo.size
        cw = pw * share
        ch = min(ph * (1 - upper), cw * h / w)
        art = photo.crop((round(pw * left), round(ph * upper), round(pw * left + cw), round(ph * upper + ch)))
        if spec["background"] == "photo":
            image = ImageOps.fit(art, COVER, Image.LANCZOS)
        else:  # a panel in the middle third
            image.paste(ImageOps.fit(art, (w - 80, h // 2), Image.LANCZOS), (40, h // 4))
    draw = ImageDraw.Draw(image)
    ink = INKS[spec["title_colour"]]
    if spec["frame"]:
        draw.rectangle((20, 20, w - 21, h - 21), outline=ink, width=4)
    font = _font(spec["title_size"], spec["title_font"])
    text = _wrapped(title, font, w - 100)
    box = draw.multiline_textbbox((0, 0), text, font=font, align=spec["align"])
    y = {"top": 90, "middle": (h - (box[3] - box[1])) // 2, "bottom": h - 200 - (box[3] - box[1])}[spec["title_at"]]
    x = 50 if spec["align"] == "left" else (w - (box[2] - box[0])) // 2
    draw.multiline_text((x - box[0], y - box[1]), text, font=font, fill=ink, align=spec["align"])
    if spec["rules"]:
        draw.line((50, y - 20, w - 50, y - 20), fill=ink, width=3)
        draw.line((50, y + box[3] - box[1] + 20, w - 50, y + box[3] - box[1] + 20), fill=ink, width=3)
    small = _font(spec["author_size"], spec["author_font"])
    ay = 40 if spec["author_at"] == "top" else h - 80
    for line, dy in ((author.upper(), 0), (spec["series"], spec["author_size"] + 8)):
        size = small if dy == 0 else _font(spec["author_size"] * 2 // 3, spec["author_font"])
        lw = draw.textlength(line, font=size)
        lx = 50 if spec["align"] == "left" else (w - lw) / 2
        draw.text((lx, ay + dy if spec["author_at"] == "top" else ay - dy), line, font=size, fill=ink)
    if spec["mark"] != "none":  # the publisher's mark, bottom right
        box_mark = (w - 90, h - 60, w - 50, h - 20)
        (draw.ellipse if spec["mark"] == "circle" else draw.rectangle)(box_mark, fill=ink)
        draw.text((w - 70, h - 40), spec["publisher"][0], font=_font(26, FONTS[0]), fill=_contrasting(ink),
                  anchor="mm")  # fmt: skip
    return image


def cover_overlay(kind: str, image: Image.Image, rng: random.Random) -> tuple[Image.Image, Log]:
    """A shop's sticker or caption band on cover 1."""
    w, h = image.size
    if kind == "cover_sticker":
        side = round(w * rng.uniform(0.22, 0.34))
        colour = INKS[rng.choice(("red", "yellow", "orange", "green", "black"))]
        layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        ImageDraw.Draw(layer).ellipse((0, 0, side - 1, side - 1), fill=(*colour, 255))
        text = rng.choice(STICKERS)
        label = _label(text.replace(" ", "\n"), FONTS[0], _contrasting(colour), round(side * 0.3))
        label.thumbnail((round(side * 0.75), round(side * 0.5)), Image.LANCZOS)
        layer.alpha_composite(label, ((side - label.width) // 2, (side - label.height) // 2))
        x = rng.choice((round(w * 0.05), w - side - round(w * 0.05)))
        y = round(h * rng.uniform(0.05, 0.7))
        return pasted(image, layer, (x, y)), {"overlay": kind, "text": text, "box": [x, y, x + side, y + side]}
    band = round(h * rng.uniform(0.06, 0.1))
    colour = INKS[rng.choice(list(INKS))]
    opacity = rng.choice((0.8, 1.0))
    layer = Image.new("RGBA", (w, band), (*colour, round(255 * opacity)))
    text = rng.choice(CAPTIONS)
    label = _label(text, FONTS[0], _contrasting(colour), round(band * 0.55))
    label.thumbnail((round(w * 0.9), band), Image.LANCZOS)
    layer.alpha_composite(label, ((w - label.width) // 2, (band - label.height) // 2))
    y = round(h * rng.uniform(0.55, 0.85))
    return pasted(image, layer, (0, y)), {"overlay": kind, "text": text, "box": [0, y, w, y + band], "opacity": opacity}


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def _jpeg(image: Image.Image | np.ndarray, path: Path) -> None:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.clip(image.round(), 0, 255).astype(np.uint8))
    image.save(path, "JPEG", quality=JPEG_QUALITY)


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray((ImageOps.exif_transpose(im) or im).convert("RGB"), np.float64)


def select(originals: Path, part: str | None, split: Path, sources: Path | None) -> tuple[list[Path], list[Path]]:
    """The photos of `part` (by stem, from the split; all without it), and those of them to
    print on: all, or with `sources` only the tops. Covers take their art from all."""
    files = sorted(p for p in originals.iterdir() if p.suffix.lower() in SUFFIXES)
    if part is not None:
        stems = set(json.loads(split.read_text())[part])
        files = [p for p in files if p.stem in stems]
    if sources is None:
        return files, files
    with sources.open(newline="") as fh:
        origin = {row["name"]: row["origin"].rsplit("/", 1)[-1] for row in csv.DictReader(fh)}
    return files, [p for p in files if TOPS.search(origin.get(p.name, ""))]


def build(
    files: list[Path], art: list[Path], originals: Path, out: Path, *, seed: int, covers: int, quiet: bool
) -> dict[str, int]:
    """Write out/catalog, out/queries, out/truth.csv and out/prints.jsonl: prints on `files`,
    `covers` templates with art from `art`; returns the number of queries per kind."""
    for sub in ("catalog", "queries"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        (out / sub).mkdir(parents=True)
    rows: list[tuple[str, str, str, str]] = []
    made: list[Log] = []

    def query(name: str, picture: Image.Image | np.ndarray, expected: str, kind: str, source: str, log: Log) -> None:
        _jpeg(picture, out / "queries" / name)
        rows.append((name, expected, kind, source))
        made.append({"file": f"queries/{name}", "kind": kind, "source": source, "expected": expected, **log})

    photos = 0
    for i, path in enumerate(files):
        rgb = _load(path)
        area = print_area(rgb)
        if area is None:
            continue
        stem = path.stem
        variants = prints(rgb, area, path.name, seed)
        shutil.copyfile(path, out / "catalog" / path.name)
        made.append({"file": f"catalog/{path.name}", "role": "plain", "source": stem})
        p1, _, log1 = variants[0]
        _jpeg(p1, out / "catalog" / f"{stem}__p1.jpg")
        made.append({"file": f"catalog/{stem}__p1.jpg", "role": "print", "source": stem, **log1})
        for k, (picture, _, log) in enumerate(variants[1:], 2):
            query(f"{stem}__p{k}.jpg", picture, "", "print_variant", stem, {"role": "print", **log})
        bases = {
            stem: Image.fromarray(rgb.astype(np.uint8)),
            f"{stem}__p1": Image.fromarray(p1.round().astype(np.uint8)),
        }
        for j in range(OVERLAYS_PER_PHOTO):
            kind = OVERLAY_KINDS[(photos * OVERLAYS_PER_PHOTO + j) % len(OVERLAY_KINDS)]
            rng = _rng(seed, path.name, kind)
            base = rng.choice(sorted(bases))
            picture, log = overlay(kind, bases[base], area, rng)
            query(f"{base}__{kind}.jpg", picture, base, kind, stem, {"role": "overlay", "made_from": base, **log})
        kind = LOOSE_KINDS[photos % len(LOOSE_KINDS)]
        rng = _rng(seed, path.name, kind)
        base = rng.choice(sorted(bases))
        picture, log = loose_overlay(kind, bases[base], area, rng)
        query(f"{base}__{kind}.jpg", picture, base, kind, stem, {"role": "overlay", "made_from": base, **log})
        photos += 1
        if not quiet and (i + 1) % 25 == 0:
            print(f"make_prints: {i + 1}/{len(files)} photos, {photos} printed", file=sys.stderr)
    for k in range(covers):
        spec = template(seed, k, art)
        name = f"cover_{k:03d}"
        words = []
        for c in range(1, 4):
            rng = _rng(seed, name, f"c{c}")
            words.append((_title(rng), f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"))
        first = cover(spec, *words[0], originals)
        _jpeg(first, out / "catalog" / f"{name}.jpg")
        made.append({"file": f"catalog/{name}.jpg", "role": "cover", "source": name, "title": words[0][0],
                     "author": words[0][1], **spec})  # fmt: skip
        for c in (2, 3):
            picture = cover(spec, *words[c - 1], originals)
            query(f"{name}__c{c}.jpg", picture, "", "template_variant", name,
                  {"role": "cover", "title": words[c - 1][0], "author": words[c - 1][1], "template": k})  # fmt: skip
        for kind, suffix in (("cover_sticker", "sticker"), ("cover_caption", "caption")):
            picture, log = cover_overlay(kind, first, _rng(seed, name, kind))
            query(f"{name}__{suffix}.jpg", picture, name, kind, name, {"role": "overlay", "made_from": name, **log})
    rows.sort()
    with (out / "truth.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["query", "expected", "kind", "source"])
        writer.writerows(rows)
    with (out / "prints.jsonl").open("w") as fh:
        fh.writelines(json.dumps(entry, sort_keys=True) + "\n" for entry in sorted(made, key=lambda e: e["file"]))
    counts: dict[str, int] = {}
    for _, _, kind, _ in rows:
        counts[kind] = counts.get(kind, 0) + 1
    counts["photos_printed"] = photos
    counts["photos_skipped"] = len(files) - photos
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=Path, required=True, help="folder of product photos")
    parser.add_argument("--out", type=Path, required=True, help="output folder (catalog/, queries/ rewritten)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("dev", "lockbox"), help="only the photos of this part of --split")
    parser.add_argument("--split", type=Path, default=SPLIT, help=f"{{part: [stems]}} (default {SPLIT.name})")
    parser.add_argument("--sources", type=Path, help="CSV name,origin: only tops (TOPS) get prints")
    parser.add_argument("--covers", type=int, default=COVERS, help="cover templates")
    parser.add_argument("--limit", type=int, help="the first N photos only")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    art, files = select(args.originals, args.part, args.split, args.sources)
    files = files[: args.limit] if args.limit is not None else files
    counts = build(files, art, args.originals, args.out, seed=args.seed, covers=args.covers, quiet=args.quiet)
    print(f"make_prints: wrote {args.out}: " + ", ".join(f"{kind} {n}" for kind, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
