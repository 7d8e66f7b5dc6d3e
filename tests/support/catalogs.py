"""Catalog files for backfill, reindex and notebook tests: rows served by the loopback image server."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from dupcheck_tools.samples import encode, product_image
from scripts.helpers.loopback import ImageServer


def write_catalog(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A CSV catalog of (entity_id, sku, image_url) rows."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["entity_id", "sku", "image_url"])
        writer.writerows(rows)
    return path


def good_rows(image_server: ImageServer, n: int, start: int = 0) -> list[tuple[str, str, str]]:
    """Rows E{start}..: each a distinct generated image the server answers."""
    return [(f"E{i}", f"SKU-{i}", image_server.image(f"/img/{i}.jpg", seed=i)) for i in range(start, start + n)]


def turned(picture: Image.Image, degrees: float = 5.0) -> Image.Image:
    """A picture turned a few degrees, its corners filled with its own background."""
    return picture.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=picture.getpixel((0, 0)))


def edited_copies(seed: int) -> list[Image.Image]:
    """Eight pictures of one photograph, each another edit a shop's catalog sees: as it is,
    mirrored, cropped 6% off the left, cropped 5% off the top (two crops from different sides:
    neither holds the other), turned 3 degrees on an expanded canvas, padded, half the size, and
    in grayscale. One pair, one judgement: every two of them are duplicates, whichever is asked
    about (tests/unit/catalog/test_gate.py checks it)."""
    a = product_image(seed, (480, 400))
    width, height = a.size
    padded = Image.new("RGB", (width + 80, height + 80), (255, 255, 255))
    padded.paste(a, (40, 40))
    return [a, ImageOps.mirror(a), a.crop((round(width * 0.06), 0, width, height)),
            a.crop((0, round(height * 0.05), width, height)),
            a.rotate(3.0, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255)), padded,
            a.resize((width // 2, height // 2)), ImageOps.grayscale(a).convert("RGB")]  # fmt: skip


EDIT_SEEDS = tuple(range(2000, 2020))  # a picture a round: edited_copies of each


@dataclass
class GateCatalog:
    """An import for the duplicate gate: `catalog` pictures to register first ({entity_id: bytes}),
    and `rows`: new pictures, turned copies of catalog pictures and repeats of earlier rows. The
    rows found duplicates are `expected`: {row number: (duplicate_of, its row number or 0)}."""

    catalog: dict[str, bytes]
    rows: list[tuple[str, str, str]]
    expected: dict[int, tuple[str, int]]


def gate_catalog(image_server: ImageServer, new: int, copies: int, repeats: int) -> GateCatalog:
    """`new` distinct rows, then `copies` turned copies of catalog pictures (C0...), then `repeats`
    rows with the same picture as an earlier new row (another address, the same file)."""
    catalog = {f"C{i}": encode(product_image(5000 + i, (320, 240))) for i in range(copies)}
    rows = good_rows(image_server, new)
    expected: dict[int, tuple[str, int]] = {}
    for i in range(copies):
        body = encode(turned(product_image(5000 + i, (320, 240))))
        rows.append((f"COPY{i}", "", image_server.add(f"/copy/{i}.jpg", body)))
        expected[len(rows)] = (f"C{i}", 0)
    for i in range(repeats):
        earlier = i * 7  # rows E0, E7, E14...: their picture again, at another address
        rows.append((f"AGAIN{i}", "", image_server.image(f"/again/{i}.jpg", seed=earlier)))
        expected[len(rows)] = (f"E{earlier}", earlier + 1)
    return GateCatalog(catalog, rows, expected)
