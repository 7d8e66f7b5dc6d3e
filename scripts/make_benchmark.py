#!/usr/bin/env python3
"""Build a duplicate-detection benchmark from a folder of original pictures.

    python scripts/make_benchmark.py --originals DIR --out DIR \
        [--colour-variants CSV VARIANT_DIR] [--products CSV] [--seed N] [--holdout-fraction F] [--per-image N]
    python scripts/make_benchmark.py --synthetic N --out DIR [...]

(`--synthetic N`: N generated product pictures, with a colour variant of every tenth, written to
out/originals and out/variants first: a set anyone can rebuild without photos of their own)

writes

    out/catalog/<stem>.<ext>        the originals that are indexed (bytes copied unchanged)
    out/queries/<stem>__<kind>.<ext> transformed copies of catalog pictures, held-out pictures
                                    and colour variants
    out/truth.csv                   query,expected,kind,source  (`expected` empty: no duplicate
                                    exists; `source`: the original the query was made from, which
                                    `evaluate --all-pairs` and `evaluate-duplicates` group by)
    out/edits.jsonl                 {"query", "edits": [{"edit": "crop", "left": 0.04, ...}, ...]}:
                                    every query's edits in order, with their parameters (crop shares
                                    per side of the picture cut, degrees counter-clockwise, factors,
                                    border shares per side of the result, the encoding)
    out/relatives.csv               query,relatives (with --products, a CSV file,product): for each
                                    held-out picture's queries, the catalog pictures of the same
                                    product (another colour, another view; `;`-separated, maybe none)

Every random choice comes from a generator seeded with (seed, source file, kind), so the same
seed and originals give byte-identical files and truth on any machine with the same Pillow.

Positive kinds (`expected` = the catalog entity the query copies) are the edits an e-commerce
catalog sees; each catalog picture gets `--per-image` of them, the kinds cycling so every kind
is covered about equally. Negative kinds (`expected` empty):
  distinct        a held-out original (never indexed), as-is and lightly edited
  colour_variant  the same product in another colour: a different SKU whose sibling IS indexed
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}

POSITIVE_KINDS = (
    "resize",
    "thumbnail",
    "squash",
    "jpeg",
    "webp",
    "crop_small",
    "crop_large",
    "brightness",
    "contrast",
    "saturation",
    "rotate",
    "mirror",
    "watermark",
    "badge",
    "pad_square",
    "frame",
    "grayscale",
    "combo",
)
NEGATIVE_KINDS = ("distinct", "colour_variant")
EDITS_FILE = "edits.jsonl"  # beside truth.csv: what was done to each query, step by step
RELATIVES_FILE = "relatives.csv"  # beside truth.csv: held-out pictures' relatives in the catalog
ALL_KINDS = POSITIVE_KINDS + NEGATIVE_KINDS

# --------------------------------------------------------------------------------------------
# Transforms: (image, rng, log) -> image; each appends what it did to `log` (written to
# edits.jsonl: the known edit of every query, which `evaluate` checks the named edits against).
# Output encoding is chosen separately (see `_encode`). Logging draws nothing from `rng`.
# --------------------------------------------------------------------------------------------

Log = list[dict[str, Any]]


def _resize(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    scale = rng.choice([rng.uniform(0.3, 0.8), rng.uniform(1.2, 1.6)])
    w, h = img.size
    log.append({"edit": "resize", "scale": round(scale, 3)})
    return img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BICUBIC)


def _thumbnail(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    out = img.copy()
    side = rng.randint(96, 200)
    log.append({"edit": "thumbnail", "side": side})
    out.thumbnail((side, side), Image.Resampling.LANCZOS)
    return out


def _squash(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    side = rng.choice([200, 256, 300, 400, 512])
    log.append({"edit": "squash", "side": side, "aspect": round(img.size[0] / img.size[1], 3)})
    return img.resize((side, side), Image.Resampling.BILINEAR)


def _identity(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    return img


def _crop(img: Image.Image, rng: random.Random, log: Log, low: float, high: float) -> Image.Image:
    w, h = img.size
    left, right = rng.uniform(low, high), rng.uniform(low, high)
    top, bottom = rng.uniform(low, high), rng.uniform(low, high)
    if rng.random() < 0.3:  # asymmetric: one side barely touched
        side = rng.randrange(4)
        if side == 0:
            left = rng.uniform(0, low)
        elif side == 1:
            right = rng.uniform(0, low)
        elif side == 2:
            top = rng.uniform(0, low)
        else:
            bottom = rng.uniform(0, low)
    box = (round(w * left), round(h * top), w - round(w * right), h - round(h * bottom))
    # Shares of the picture cut off each side, as cut (in pixels).
    cut = {"left": box[0] / w, "right": (w - box[2]) / w, "top": box[1] / h, "bottom": (h - box[3]) / h}
    log.append({"edit": "crop", **{side: round(share, 4) for side, share in cut.items()}})
    return img.crop(box)


def _crop_small(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    return _crop(img, rng, log, 0.01, 0.05)


def _crop_large(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    return _crop(img, rng, log, 0.05, 0.15)


def _away_from_one(rng: random.Random, low: float, high: float, gap: float) -> float:
    """A factor in [low, 1-gap] or [1+gap, high]: a visible change, never a no-op."""
    return rng.uniform(low, 1 - gap) if rng.random() < 0.5 else rng.uniform(1 + gap, high)


def _unseen(before: Image.Image, after: Image.Image) -> bool:
    """Whether a step left the picture as a viewer sees it: under 1% of its pixels moved by 8
    levels (of 255) or more in any channel. A tone or colour step can (grayscale or saturation
    of a picture without colour); `evaluate` does not ask for such a step to be named."""
    moved = np.abs(np.asarray(before.convert("RGB"), np.int16) - np.asarray(after.convert("RGB"), np.int16))
    return float((moved.max(axis=-1) >= 8).mean()) < 0.01


def _logged(step: dict[str, Any], before: Image.Image, after: Image.Image, log: Log) -> Image.Image:
    log.append({**step, "visible": False} if _unseen(before, after) else step)
    return after


def _enhanced(
    enhancer: Callable[[Image.Image], Any], name: str, factor: float, img: Image.Image, log: Log
) -> Image.Image:
    return _logged({"edit": name, "factor": round(factor, 3)}, img, enhancer(img).enhance(factor), log)


def _brightness(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    return _enhanced(ImageEnhance.Brightness, "brightness", _away_from_one(rng, 0.65, 1.35, 0.1), img, log)


def _contrast(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    return _enhanced(ImageEnhance.Contrast, "contrast", _away_from_one(rng, 0.6, 1.5, 0.15), img, log)


def _saturation(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    return _enhanced(ImageEnhance.Color, "saturation", _away_from_one(rng, 0.3, 1.8, 0.25), img, log)


def _rotate(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    angle = rng.uniform(1.0, 5.0) * rng.choice([-1, 1])
    fill = rng.choice([(255, 255, 255), (0, 0, 0)])
    expand = rng.random() < 0.5
    # Pillow turns counter-clockwise for a positive angle.
    fill_name = "white" if fill[0] else "black"
    log.append({"edit": "rotate", "degrees": round(angle, 2), "expand": expand, "fill": fill_name})
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=expand, fillcolor=fill)


def _mirror(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    log.append({"edit": "mirror"})
    return ImageOps.mirror(img)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, size))


WATERMARK_TEXTS = ("SAMPLE", "© shop.example", "PREVIEW", "demo-store", "NOT FOR SALE")


def _watermark(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    base = img.convert("RGBA")
    w, h = base.size
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    text = rng.choice(WATERMARK_TEXTS)
    size = round(min(w, h) * rng.uniform(0.06, 0.14))
    font = _font(size)
    colour = rng.choice([(255, 255, 255), (0, 0, 0), (128, 128, 128)])
    alpha = rng.randint(90, 170)
    tiled = rng.random() >= 0.5
    log.append({"edit": "watermark", "text": text, "tiled": tiled})
    if not tiled:  # one line, centre or a corner
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        x = rng.choice([(w - tw) // 2, round(w * 0.04), w - tw - round(w * 0.04)])
        y = rng.choice([(h - th) // 2, round(h * 0.04), h - th - round(h * 0.06)])
        draw.text((x, y), text, font=font, fill=(*colour, alpha))
    else:  # tiled
        step_x, step_y = max(size * 6, 40), max(size * 3, 30)
        for y in range(-size, h, step_y):
            for x in range(-size + (y // step_y % 2) * step_x // 2, w, step_x):
                draw.text((x, y), text, font=font, fill=(*colour, alpha // 2))
    return Image.alpha_composite(base, layer).convert("RGB")


BADGE_TEXTS = ("SALE", "-30%", "NEW", "HOT", "-50%", "BEST")


def _badge(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    out = img.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out)
    side = round(min(w, h) * rng.uniform(0.12, 0.22))
    margin = round(min(w, h) * rng.uniform(0.0, 0.04))
    corner = rng.randrange(4)
    x = margin if corner in (0, 2) else w - side - margin
    y = margin if corner in (0, 1) else h - side - margin
    where = ("top left", "top right", "bottom left", "bottom right")[corner]
    log.append({"edit": "badge", "corner": where, "size": round(side / min(w, h), 3)})
    colour = rng.choice([(220, 20, 40), (250, 200, 0), (20, 20, 20), (0, 120, 220)])
    text_colour = (0, 0, 0) if colour == (250, 200, 0) else (255, 255, 255)
    if rng.random() < 0.5:
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    else:
        draw.rectangle((x, y, x + side, y + round(side * 0.6)), fill=colour)
    font = _font(round(side * 0.28))
    draw.text((x + side * 0.12, y + side * 0.15), rng.choice(BADGE_TEXTS), font=font, fill=text_colour)
    return out


def _pad_square(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    w, h = img.size
    side = round(max(w, h) * rng.uniform(1.0, 1.15))
    fill = rng.choice([(255, 255, 255), (255, 255, 255), (0, 0, 0), (240, 240, 240)])
    canvas = Image.new("RGB", (side, side), fill)
    x = (side - w) // 2 + rng.randint(-(side - w) // 4, (side - w) // 4) if side > w else 0
    y = (side - h) // 2 + rng.randint(-(side - h) // 4, (side - h) // 4) if side > h else 0
    canvas.paste(img, (max(0, x), max(0, y)))
    left, top = max(0, x), max(0, y)
    # Shares of the padded picture that are padding, per side.
    added = {"left": left, "right": side - left - w, "top": top, "bottom": side - top - h}
    log.append({"edit": "pad", **{k: round(max(0, v) / side, 4) for k, v in added.items()}})
    return canvas


def _frame(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    w, h = img.size
    border = max(2, round(min(w, h) * rng.uniform(0.03, 0.10)))
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    across, down = round(border / (w + 2 * border), 4), round(border / (h + 2 * border), 4)
    log.append({"edit": "frame", "left": across, "right": across, "top": down, "bottom": down})
    out = ImageOps.expand(img, border=border, fill=colour)
    if rng.random() < 0.4:  # a thin inner line, as frame templates often have
        draw = ImageDraw.Draw(out)
        inner = tuple(255 - c for c in colour)
        draw.rectangle((border - 2, border - 2, w + border + 1, h + border + 1), outline=inner, width=2)
    return out


def _grayscale(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    grey = ImageOps.grayscale(img).convert("RGB") if rng.random() < 0.5 else ImageOps.grayscale(img)
    return _logged({"edit": "grayscale"}, img, grey, log)


# Steps a combination draws from: each mild on its own, together a realistic re-upload.
Transform = Callable[[Image.Image, random.Random, Log], Image.Image]
COMBO_STEPS: tuple[tuple[str, Transform], ...] = (
    ("resize", _resize),
    ("crop_small", _crop_small),
    ("brightness", _brightness),
    ("contrast", _contrast),
    ("saturation", _saturation),
    ("mirror", _mirror),
    ("watermark", _watermark),
    ("badge", _badge),
    ("pad_square", _pad_square),
    ("frame", _frame),
    ("rotate", _rotate),
    ("grayscale", _grayscale),
)


def _combo(img: Image.Image, rng: random.Random, log: Log) -> Image.Image:
    steps = rng.sample(COMBO_STEPS, k=rng.randint(2, 3))
    for _, step in steps:
        img = step(img.convert("RGB"), rng, log)
    return img


TRANSFORMS: dict[str, Transform] = {
    "resize": _resize,
    "thumbnail": _thumbnail,
    "squash": _squash,
    "jpeg": _identity,
    "webp": _identity,
    "crop_small": _crop_small,
    "crop_large": _crop_large,
    "brightness": _brightness,
    "contrast": _contrast,
    "saturation": _saturation,
    "rotate": _rotate,
    "mirror": _mirror,
    "watermark": _watermark,
    "badge": _badge,
    "pad_square": _pad_square,
    "frame": _frame,
    "grayscale": _grayscale,
    "combo": _combo,
}
assert set(TRANSFORMS) == set(POSITIVE_KINDS)

# Light edits a held-out ("distinct") picture or a colour variant is also queried with.
NEGATIVE_EDITS = ("resize", "jpeg", "crop_small", "brightness", "pad_square")


def _encode(img: Image.Image, kind: str, rng: random.Random, log: Log) -> tuple[bytes, str]:
    """Encode the query as a catalog would receive it; returns (bytes, suffix)."""
    buf = io.BytesIO()
    if kind == "jpeg":
        quality = rng.randint(20, 50)
        log.append({"edit": "encode", "format": "jpeg", "quality": quality})
        img.convert("RGB").save(buf, "JPEG", quality=quality)
        return buf.getvalue(), ".jpg"
    if kind == "webp":
        quality = rng.randint(30, 80)
        log.append({"edit": "encode", "format": "webp", "quality": quality})
        img.convert("RGB").save(buf, "WEBP", quality=quality, method=4)
        return buf.getvalue(), ".webp"
    if kind in ("badge", "watermark", "frame") and rng.random() < 0.25:
        log.append({"edit": "encode", "format": "png"})
        img.save(buf, "PNG", optimize=False)
        return buf.getvalue(), ".png"
    quality = rng.randint(75, 92)
    log.append({"edit": "encode", "format": "jpeg", "quality": quality})
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), ".jpg"


HALVES = ("A", "B")


def in_half(name: str) -> str:
    """Which half an original belongs to: SHA-1 of its file name, last byte even (A) or odd (B).
    The halves of docs/lab/evaluation.md (the 598 originals split 292 / 306)."""
    return HALVES[hashlib.sha1(name.encode()).digest()[-1] % 2]


def _rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _load(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im) or im
        return im.convert("RGB")


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def make_query(img: Image.Image, kind: str, seed: int, source: str) -> tuple[bytes, str, Log]:
    """The query's bytes, its file suffix, and the edits that made it, in order."""
    rng = _rng(seed, source, kind)
    log: Log = []
    out = TRANSFORMS[kind](img, rng, log)
    data, suffix = _encode(out, kind, rng, log)
    return data, suffix, log


def build(
    originals: Path,
    out: Path,
    *,
    seed: int = 1,
    holdout_fraction: float = 0.15,
    per_image: int = 6,
    colour_variants: tuple[Path, Path] | None = None,
    limit: int | None = None,
    half: str | None = None,
    products: Path | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Write out/catalog, out/queries and out/truth.csv; returns the number of queries per kind."""
    if not 0 <= per_image <= len(POSITIVE_KINDS):
        # More would repeat a kind: the same query name twice, one file overwriting the other.
        raise SystemExit(f"--per-image must be between 0 and {len(POSITIVE_KINDS)}")
    originals_abs = originals.resolve()
    for sub in ("catalog", "queries"):
        folder = (out / sub).resolve()
        if originals_abs == folder or folder in originals_abs.parents:
            raise SystemExit(f"--originals {originals} lies inside {out / sub}, which is rewritten")
    files = list_images(originals)
    if half is not None:
        files = [p for p in files if in_half(p.name) == half]
    if limit is not None:
        files = files[:limit]
    if not files:
        raise SystemExit(f"no images in {originals}")
    by_name = {p.name: p for p in files}

    variants: list[tuple[Path, Path]] = []
    skipped_pairs = 0
    if colour_variants is not None:
        csv_path, variant_dir = colour_variants
        with csv_path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                sibling = by_name.get(row["sibling"])
                variant = variant_dir / row["variant"]
                if sibling is None or not variant.is_file():
                    skipped_pairs += 1  # sibling not among these originals: the pair cannot be tested
                    continue
                variants.append((variant, sibling))
        if skipped_pairs:
            print(
                f"make_benchmark: {skipped_pairs} colour-variant pair(s) skipped (sibling or file missing)",
                file=sys.stderr,
            )
    siblings = {s.name for _, s in variants}

    # Hold-out: a seeded choice among originals that are not colour-variant siblings.
    candidates = [p for p in files if p.name not in siblings]
    n_hold = round(len(files) * holdout_fraction)
    n_hold = min(n_hold, len(candidates))
    held = set(_rng(seed, "holdout").sample([p.name for p in candidates], n_hold))
    catalog = [p for p in files if p.name not in held]
    held_out = [p for p in files if p.name in held]

    for sub in ("catalog", "queries"):
        folder = out / sub
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    rows: list[tuple[str, str, str, str]] = []
    edits: dict[str, Log] = {}
    counts: dict[str, int] = {}

    def emit(name: str, data: bytes, expected: str, kind: str, source: str, log: Log) -> None:
        if (out / "queries" / name).exists():  # e.g. a variant whose stem is also an original's
            raise SystemExit(f"two queries would both be named {name}")
        (out / "queries" / name).write_bytes(data)
        rows.append((name, expected, kind, source))
        edits[name] = log
        counts[kind] = counts.get(kind, 0) + 1

    jobs: list[tuple[str, Path, str]] = []
    for i, path in enumerate(catalog):
        shutil.copyfile(path, out / "catalog" / path.name)
        for j in range(per_image):
            jobs.append(("pos", path, POSITIVE_KINDS[(i * per_image + j) % len(POSITIVE_KINDS)]))
    for path in held_out:
        jobs.append(("distinct", path, ""))
        jobs.append(("distinct", path, _rng(seed, path.name, "distinct-edit").choice(NEGATIVE_EDITS)))
    for variant, _sibling in variants:
        jobs.append(("variant", variant, ""))
        jobs.append(("variant", variant, _rng(seed, variant.name, "variant-edit").choice(NEGATIVE_EDITS)))

    sibling_of = {v.name: s for v, s in variants}
    for role, path, kind in _progress(jobs, progress):
        img = _load(path)
        stem = path.stem
        if role == "pos":
            data, suffix, log = make_query(img, kind, seed, path.name)
            emit(f"{stem}__{kind}{suffix}", data, stem, kind, stem, log)
            continue
        neg_kind = "distinct" if role == "distinct" else "colour_variant"
        expected = ""
        if kind:
            data, suffix, log = make_query(img, kind, seed, path.name)
            name = f"{stem}__{neg_kind}_{kind}{suffix}"
        else:
            data, suffix, log = path.read_bytes(), path.suffix.lower(), []
            name = f"{stem}__{neg_kind}{suffix}"
        _ = sibling_of  # the sibling stays in the catalog; truth has no expected match
        emit(name, data, expected, neg_kind, stem, log)

    with (out / "truth.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["query", "expected", "kind", "source"])
        writer.writerows(sorted(rows))
    with (out / EDITS_FILE).open("w") as fh:
        fh.writelines(json.dumps({"query": name, "edits": edits[name]}) + "\n" for name, *_ in sorted(rows))
    if colour_variants is not None:  # which catalog entry each variant is a sibling of
        with (out / "colour_variant_siblings.csv").open("w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["variant", "sibling"])
            writer.writerows(sorted((v.stem, s.stem) for v, s in variants))
    else:  # a stale one from an earlier run would describe pairs this benchmark does not have
        (out / "colour_variant_siblings.csv").unlink(missing_ok=True)
    if products is not None:
        write_relatives(out, products, [p.name for p in catalog], rows)
    else:
        (out / RELATIVES_FILE).unlink(missing_ok=True)
    return dict(sorted(counts.items()))


def write_relatives(out: Path, products: Path, catalog: list[str], rows: list[tuple[str, str, str, str]]) -> None:
    """relatives.csv: each held-out picture's queries and the catalog pictures of its product."""
    with products.open(newline="") as fh:
        product_of = {row["file"]: row["product"] for row in csv.DictReader(fh) if row.get("product")}
    by_product: dict[str, list[str]] = {}
    for name in catalog:
        if name in product_of:
            by_product.setdefault(product_of[name], []).append(Path(name).stem)
    stems = {Path(name).stem: name for name in product_of}
    with (out / RELATIVES_FILE).open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["query", "relatives"])
        for query, _expected, kind, _source in sorted(rows):
            if kind == "distinct":
                source = stems.get(query.split("__")[0])
                relatives = by_product.get(product_of[source], []) if source else []
                writer.writerow([query, ";".join(sorted(relatives))])


def _progress(items: list, enabled: bool) -> Iterable:
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return items
    return tqdm(items, desc="queries", unit="img", file=sys.stderr)


def write_synthetic(out: Path, count: int, seed: int) -> tuple[Path, tuple[Path, Path]]:
    """`count` generated product pictures (dupcheck_tools.samples, 640x480, JPEG quality 90) and
    the same product in another colour for every tenth: (originals, (variants CSV, variants dir))."""
    from dupcheck_tools.samples import encode, product_image

    originals, variants = out / "originals", out / "variants"
    originals.mkdir(parents=True, exist_ok=True)
    variants.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(count):
        picture_seed = seed * 1_000_000 + i
        name = f"synthetic_{i:05d}.jpg"
        (originals / name).write_bytes(encode(product_image(picture_seed, (640, 480)), quality=90))
        if i % 10 == 5:
            variant = f"variant_{i:05d}.jpg"
            hue = (i * 0.37) % 1.0
            (variants / variant).write_bytes(encode(product_image(picture_seed, (640, 480), hue=hue), quality=90))
            pairs.append((variant, name))
    with (out / "variants.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["variant", "sibling"])
        writer.writerows(pairs)
    return originals, (out / "variants.csv", variants)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--originals", type=Path, help="folder of distinct originals")
    source.add_argument("--synthetic", type=int, metavar="N", help="generate N product pictures as the originals")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--colour-variants",
        nargs=2,
        type=Path,
        metavar=("CSV", "DIR"),
        help="CSV with columns variant,sibling and the folder of the variant files",
    )
    parser.add_argument(
        "--products", type=Path, default=None,
        help="CSV file,product naming each original's product: writes relatives.csv (held-out pictures whose "
        "product the catalog holds in another picture)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--holdout-fraction", type=float, default=0.15, help="originals kept out as distinct")
    parser.add_argument("--per-image", type=int, default=6, help="positive queries per catalog picture")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N originals")
    parser.add_argument(
        "--half", choices=HALVES, default=None,
        help="use only one of two disjoint halves of the originals, split by a hash of the file name "
        "(colour variants follow their sibling)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not 0.0 <= args.holdout_fraction < 1.0:
        parser.error("--holdout-fraction must be in [0, 1)")
    if args.synthetic is not None:
        args.originals, args.colour_variants = write_synthetic(args.out, args.synthetic, args.seed)
    counts = build(
        args.originals,
        args.out,
        seed=args.seed,
        holdout_fraction=args.holdout_fraction,
        per_image=args.per_image,
        colour_variants=tuple(args.colour_variants) if args.colour_variants else None,
        limit=args.limit,
        half=args.half,
        products=args.products,
        progress=not args.quiet,
    )
    print(f"wrote {sum(counts.values())} queries to {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
