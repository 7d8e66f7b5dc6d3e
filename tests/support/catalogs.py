"""Catalog files for backfill, reindex and notebook tests: rows served by the loopback image server."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from dupcheck_tools.samples import encode, product_image
from support.image_server import ImageServer


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


# Pictures whose edited copies (`edited_copies`) the service calls duplicates of each other, every
# pair both ways: what the gate's promise is about (tests/unit/test_gate.py checks the first).
MUTUAL_SEEDS = (923, 924, 928, 930)


def edited_copies(seed: int) -> list[Image.Image]:
    """Eight copies of one picture, each edited another way: cropped 4% a side, turned 3 degrees,
    mirrored, padded, a badge over a corner, half the size, JPEG quality 50, and as it is."""
    a = product_image(seed, (480, 400))
    width, height = a.size
    padded = Image.new("RGB", (width + 80, height + 80), (255, 255, 255))
    padded.paste(a, (40, 40))
    badge = a.copy()
    ImageDraw.Draw(badge).rectangle((10, height - 60, 200, height - 20), fill=(200, 0, 0))
    return [a.crop((width // 25, height // 25, width - width // 25, height - height // 25)), turned(a, 3.0),
            ImageOps.mirror(a), padded, badge, a.resize((width // 2, height // 2)),
            Image.open(io.BytesIO(encode(a, "JPEG", quality=50))).convert("RGB"), a]  # fmt: skip


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
